"""The one place that owns this process's libvirt connection.

libvirt calls are blocking C calls: made from a greenthread they stall the whole eventlet hub
(every RPC, timer and heartbeat of the agent). So, as Nova does:
- libvirt's default event loop runs in a native thread; it drives keepalives and notices a dead
  remote connection, which `isAlive()` then reports;
- the connection is handed out wrapped in `eventlet.tpool.Proxy`, so each call runs in a native
  thread and only the calling greenthread waits;
- `run(operation, ...)` moves a whole multi-call operation (list domains, then ask each one) to one
  native thread: one thread hop instead of one per call, and the domains that `listAllDomains()`
  returns in a plain list would not be proxied anyway.
Operations given to `run` must only call libvirt and plain Python (no logging, no eventlet).
"""
import logging

import libvirt
from eventlet import patcher, semaphore, tpool
from nameko.extensions import DependencyProvider, SharedExtension

from common.errors import HostOperationFailed

DEFAULT_URI = "test:///default"
KEEPALIVE_INTERVAL_S = 5
KEEPALIVE_COUNT = 3
PROXIED_TYPES = (libvirt.virConnect, libvirt.virDomain, libvirt.virStoragePool,
                 libvirt.virStorageVol, libvirt.virStream, libvirt.virNetwork)

log = logging.getLogger(__name__)
native_threading = patcher.original("threading")
_event_loop_lock = native_threading.Lock()
_event_loop_thread = None


def _ignore_libvirt_error(_context, _error):
    """libvirt prints every error to stderr by default; we raise them as exceptions instead."""


def start_event_loop():
    """Register and run libvirt's default event loop, once per process, before any open()."""
    global _event_loop_thread
    with _event_loop_lock:
        if _event_loop_thread is not None:
            return
        libvirt.registerErrorHandler(_ignore_libvirt_error, None)
        libvirt.virEventRegisterDefaultImpl()
        _event_loop_thread = native_threading.Thread(
            target=_run_event_loop, name="libvirt-event-loop", daemon=True)
        _event_loop_thread.start()


def _run_event_loop():
    while True:
        libvirt.virEventRunDefaultImpl()


def is_test_uri(uri):
    return uri.startswith("test:")


class HypervisorConnection:
    """A libvirt connection that reopens itself when it has died (libvirtd restarted)."""

    def __init__(self, uri):
        self.uri = uri
        self._raw = None
        self._lock = semaphore.Semaphore()  # greenthreads share one connection: open it once
        self._open_hooks = []

    @property
    def is_test_driver(self):
        return is_test_uri(self.uri)

    @property
    def conn(self):
        """The connection, proxied: every method call runs in a native thread."""
        return tpool.Proxy(self._connection(), autowrap=PROXIED_TYPES)

    def run(self, operation, *args, **kwargs):
        """`operation(raw_conn, *args, **kwargs)` in a native thread; libvirt errors become
        HostOperationFailed so callers across RPC see what failed on the host."""
        raw = self._connection()
        try:
            return tpool.execute(operation, raw, *args, **kwargs)
        except libvirt.libvirtError as exc:
            raise HostOperationFailed(f"libvirt ({self.uri}): {exc}") from None

    def add_open_hook(self, on_open, on_close=None):
        """Run `on_open(raw_conn)` (in a native thread) on every connection opened from now on, and
        `on_close(raw_conn)` before this object closes it.

        libvirt forgets event callbacks with the connection that registered them, so whoever
        needs them registers through a hook and gets them back when a dead connection is reopened."""
        with self._lock:
            self._open_hooks.append((on_open, on_close))
            if self._raw is not None:  # opened before the hook came: it needs the hook too
                self._run_open_hook(on_open, self._raw)

    def ensure_open(self):
        """Open (or reopen) the connection now; lets a watchdog restore hooks without waiting for
        the next libvirt call."""
        self._connection()

    def close(self):
        with self._lock:
            raw, self._raw = self._raw, None
        if raw is not None:
            for _on_open, on_close in self._open_hooks:
                if on_close is not None:
                    try:
                        tpool.execute(on_close, raw)
                    except libvirt.libvirtError:
                        pass  # a dead connection has dropped its callbacks anyway
            try:
                tpool.execute(raw.close)
            except libvirt.libvirtError:
                pass

    def _connection(self):
        with self._lock:
            if self._raw is None or not self._alive(self._raw):
                self._raw = self._open()
            return self._raw

    @staticmethod
    def _alive(raw):
        try:
            return tpool.execute(raw.isAlive) == 1
        except libvirt.libvirtError:
            return False

    def _open(self):
        start_event_loop()
        try:
            raw = tpool.execute(libvirt.open, self.uri)
        except libvirt.libvirtError as exc:
            raise HostOperationFailed(f"cannot connect to {self.uri}: {exc.get_error_message()}") from None
        try:
            # Remote (qemu+unix/ssh) connections only: the test driver has no keepalive.
            tpool.execute(raw.setKeepAlive, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT)
        except libvirt.libvirtError:
            pass
        for on_open, _on_close in self._open_hooks:
            self._run_open_hook(on_open, raw)
        return raw

    def _run_open_hook(self, on_open, raw):
        try:
            tpool.execute(on_open, raw)
        except libvirt.libvirtError as exc:
            # Calls on the connection still work; only what the hook adds (events) is missing.
            log.warning("libvirt (%s): connection hook %r failed: %s", self.uri, on_open, exc)


class HostConnection(SharedExtension):
    """The container's one HypervisorConnection (config LIBVIRT_URI, default test:///default),
    shared by every extension that talks to libvirt (RPC workers, lifecycle events, port forwards),
    so they all see the same connection and its event callbacks.

    The test driver's state lives in this process only, so only the host agent may hold it."""

    def setup(self):
        if getattr(self, "connection", None) is None:
            self.connection = HypervisorConnection(self.container.config.get("LIBVIRT_URI", DEFAULT_URI))

    def stop(self):
        self.connection.close()

    def kill(self):
        self.connection.close()


class Hypervisor(DependencyProvider):
    """Injects the container's HypervisorConnection."""

    host = HostConnection()

    def get_dependency(self, worker_ctx):
        return self.host.connection
