"""A client of rrdcached, rrdtool's write-back caching daemon, for the one thing librrd's own client
(`rrdtool.update(..., "--daemon", address)`) does not offer: a whole host batch of updates in one
request (the protocol's BATCH command). librrd's client sends an update and waits for its answer:
~22 µs a sample here against ~1.5 µs in a BATCH, and the metrics service stores every domain of
every host every step.

Reads never come here: rrdtool's own `--daemon` option (info, last, tune, xport, dump, graphv)
makes librrd flush a file's cached values before it reads or changes the file; the store passes it.

The protocol (rrdcached(1)): a command per line, fields separated by spaces (a space or a
backslash in a file name escaped by a backslash, as librrd's client does); each answer is a status
line "<n> <message>", negative for an error, followed by n more lines when n is positive. After a
BATCH's "." the status counts the commands that failed and each following line is
"<command number, from 1> <error>".

Called from native threads (the store runs in eventlet's thread pool), so the socket and its lock
are the unpatched ones; one connection per client, one request at a time, reconnected once when
the daemon went away (a restart: its journal keeps what it had accepted).
"""
import logging

from eventlet.patcher import original

socket = original("socket")
threading = original("threading")
log = logging.getLogger(__name__)

DEFAULT_PORT = 42217
TIMEOUT = 30


class RrdCachedError(Exception):
    """The daemon could not be reached or refused a command."""


def escape(path):
    return path.replace("\\", "\\\\").replace(" ", "\\ ")


def parse_address(address):
    """(family, socket address) of rrdcached's address notation: unix:/path, /path, host[:port]."""
    if address.startswith("unix:"):
        return socket.AF_UNIX, address[len("unix:"):]
    if address.startswith("/"):
        return socket.AF_UNIX, address
    host, _, port = address.rpartition(":") if ":" in address else (address, "", "")
    return socket.AF_INET, (host, int(port or DEFAULT_PORT))


class RrdCached:
    def __init__(self, address):
        self.address = address
        self._family, self._sockaddr = parse_address(address)
        self._lock = threading.Lock()
        self._sock = None
        self._file = None

    def update_batch(self, updates):
        """`updates`: [(path, "ts:v:v...")]: every value of the file in its data source order
        (rrdcached takes no template). Returns {index in `updates`: the daemon's error}."""
        if not updates:
            return {}
        body = "".join(f"UPDATE {escape(path)} {values}\n" for path, values in updates)
        with self._lock:
            failed = self._request(["BATCH\n", body + ".\n"])
        errors = {}
        for line in failed:
            number, _, message = line.partition(" ")
            errors[int(number) - 1] = message
        return errors

    def forget(self, path):
        """Drop what the daemon holds for a file about to be removed (its flush would fail)."""
        with self._lock:
            try:
                self._request([f"FORGET {escape(path)}\n"])
            except RrdCachedError as exc:
                if "No such file" not in str(exc):  # nothing cached for it
                    raise

    def flush_all(self):
        """Ask the daemon to write every file it holds values for (it answers before it is done:
        stats()["QueueLength"] falls to 0 when it is)."""
        with self._lock:
            self._request(["FLUSHALL\n"])

    def stats(self):
        with self._lock:
            lines = self._request(["STATS\n"])
        return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}

    def close(self):
        with self._lock:
            self._disconnect()

    # -- one request: its parts, each followed by its status line ------------------------------

    def _request(self, parts):
        for attempt in (1, 2):
            try:
                if self._file is None:
                    self._connect()
                return self._exchange(parts)
            except (OSError, EOFError) as exc:
                self._disconnect()
                if attempt == 2:
                    raise RrdCachedError(f"rrdcached at {self.address}: {exc}") from exc
                log.info("rrdcached at %s: %s; connecting again", self.address, exc)

    def _exchange(self, parts):
        lines = []
        for part in parts:
            self._file.write(part.encode())
            self._file.flush()
            status, message = self._status()
            if status < 0:
                raise RrdCachedError(f"rrdcached at {self.address}: {message}")
            lines = [self._line() for _ in range(status)]
        return lines

    def _status(self):
        number, _, message = self._line().partition(" ")
        return int(number), message

    def _line(self):
        line = self._file.readline()
        if not line.endswith(b"\n"):
            raise EOFError("the daemon closed the connection")
        return line.decode("utf-8", "replace").rstrip("\n")

    def _connect(self):
        sock = socket.socket(self._family, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        try:
            sock.connect(self._sockaddr)
        except OSError:
            sock.close()
            raise
        self._sock, self._file = sock, sock.makefile("rwb")

    def _disconnect(self):
        for thing in (self._file, self._sock):
            if thing is not None:
                try:
                    thing.close()
                except OSError:
                    pass
        self._sock = self._file = None
