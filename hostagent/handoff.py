"""Passing items from native threads (libvirt's event loop) to greenthreads.

eventlet's hub and its queues belong to the one OS thread that runs the hub: touching them from
another OS thread corrupts them. So a native thread only appends to a deque (thread-safe) and writes
one byte to a pipe; a greenthread waits for the pipe to become readable through the hub, which
wakes it without blocking any other greenthread (the same trick as eventlet.tpool and Nova).
"""
import collections
import fcntl

from eventlet import hubs, patcher

# The unpatched os module: a native thread must never enter eventlet's green I/O.
_native_os = patcher.original("os")
READ_CHUNK = 4096


class NativeHandoff:
    def __init__(self):
        self._items = collections.deque()
        self._read_fd, self._write_fd = _native_os.pipe()
        flags = fcntl.fcntl(self._read_fd, fcntl.F_GETFL)
        fcntl.fcntl(self._read_fd, fcntl.F_SETFL, flags | _native_os.O_NONBLOCK)
        self._closed = False

    def put(self, item):
        """Callable from any thread, including ones eventlet knows nothing about."""
        self._items.append(item)
        try:
            _native_os.write(self._write_fd, b"x")
        except OSError:
            pass  # closed while shutting down: the item is simply never read

    def get_batch(self):
        """Wait (cooperatively) until something was put; return everything put so far, in order."""
        while True:
            if self._items:
                self._drain_pipe()
                return self._pop_all()
            hubs.trampoline(self._read_fd, read=True)
            self._drain_pipe()

    def _drain_pipe(self):
        try:
            while _native_os.read(self._read_fd, READ_CHUNK):
                pass
        except BlockingIOError:
            pass

    def _pop_all(self):
        batch = []
        while self._items:
            batch.append(self._items.popleft())
        return batch

    def close(self):
        if not self._closed:
            self._closed = True
            _native_os.close(self._write_fd)
            _native_os.close(self._read_fd)
