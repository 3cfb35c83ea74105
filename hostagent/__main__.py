"""`python -m hostagent [--config hostagent/config.yaml]`: run this host's agent until SIGTERM/SIGINT."""
import eventlet

eventlet.monkey_patch()  # before anything imports socket or threading

import argparse  # noqa: E402
import logging.config  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402

from nameko.runners import ServiceRunner  # noqa: E402

from common.config import load_config  # noqa: E402
from hostagent.service import make_service  # noqa: E402

DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "config.yaml")


def main(argv=None):
    parser = argparse.ArgumentParser(description="labcloud host agent (one per hypervisor host)")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="YAML with ${ENV:default} values")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if "LOGGING" in config:
        logging.config.dictConfig(config["LOGGING"])

    runner = ServiceRunner(config)
    runner.add_service(make_service(config["HOST_NAME"]))

    def request_stop(_signum, _frame):
        # Signal handlers run on the hub's main loop and must not block on eventlet primitives:
        # stop gracefully (running workers finish, replies go out) from a greenthread instead.
        eventlet.spawn_n(runner.stop)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    runner.start()
    runner.wait()  # returns once every container has stopped (or raises if one crashed)


if __name__ == "__main__":
    main()
