"""A small HTTP server inside a Nameko container: an eventlet WSGI server on its own socket, run in
a managed thread of the container and stopped with it. Used by the dependencies that serve HTTP
next to a service's RPC (Prometheus metrics, a host agent's rrd_updates)."""
import logging

import eventlet
import eventlet.wsgi

log = logging.getLogger(__name__)


class WsgiListener:
    """`serve(container, address, port, app, what)` listens and serves; `stop()` ends both."""

    def __init__(self):
        self.sock = None
        self._gt = None

    def serve(self, container, address, port, app, what):
        self.sock = eventlet.listen((address, port))
        log.info("%s of %s on %s:%s", what, container.service_name, address, self.sock.getsockname()[1])
        self._gt = container.spawn_managed_thread(
            lambda: eventlet.wsgi.server(self.sock, app, log=log, log_output=False, socket_timeout=30), what)

    @property
    def port(self):
        return None if self.sock is None else self.sock.getsockname()[1]

    def stop(self):
        if self._gt is not None:
            self._gt.kill()
            self._gt = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None
