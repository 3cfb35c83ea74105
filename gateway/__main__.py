"""`python -m gateway [--config gateway/config.yaml]`: serve the REST API with eventlet.wsgi."""
import eventlet

eventlet.monkey_patch()  # first: nameko's standalone proxies and the stdlib must be green

import argparse
import logging
import logging.config
import os
import signal

from eventlet import patcher, wsgi
from eventlet.green import os as green_os

from common.config import load_config
from gateway.app import create_app

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.yaml")
log = logging.getLogger("gateway")
_os = patcher.original("os")  # blocking os, safe inside a signal handler


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="YAML config (default: %(default)s)")
    return parser.parse_args(argv)


def serve(config):
    app = create_app(config)
    host, port = config.get("HOST", "127.0.0.1"), int(config.get("PORT", 8080))
    sock = eventlet.listen((host, port))
    server = eventlet.spawn(wsgi.server, sock, app, log=logging.getLogger("gateway.access"))

    wake_read, wake_write = _os.pipe()

    def on_signal(signum, frame):
        # Runs inside the hub, so no green calls here. The byte also wakes the hub's poll, which
        # would otherwise sleep on until its next timer (up to a minute) before stopping.
        _os.write(wake_write, bytes([signum]))

    def stop_on_signal():
        signum = green_os.read(wake_read, 1)[0]
        log.info("signal %s: stopping after in-flight requests", signum)
        # wsgi.server treats SystemExit as "stop accepting, wait for running requests".
        server.kill(SystemExit)

    eventlet.spawn_n(stop_on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("gateway listening on http://%s:%s", host, sock.getsockname()[1])
    try:
        server.wait()
    except SystemExit:
        pass  # the kill's exception is re-raised by wait() if wsgi.server did not swallow it
    finally:
        app.extensions["rpc_pool"].close()
    log.info("gateway stopped")


def main(argv=None):
    config = load_config(parse_args(argv).config)
    if config.get("LOGGING"):
        logging.config.dictConfig(config["LOGGING"])
    else:
        logging.basicConfig(level=logging.INFO)
    serve(config)


if __name__ == "__main__":
    main()
