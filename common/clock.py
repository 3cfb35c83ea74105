"""The clock as a dependency, so tests can move time (lease expiry, token expiry, timeouts)."""
import datetime as dt

from nameko.extensions import DependencyProvider


def utcnow():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Clock(DependencyProvider):
    """Injects a zero-argument callable returning naive UTC `datetime`s."""

    def __init__(self, now=utcnow):
        self.now = now

    def get_dependency(self, worker_ctx):
        return self.now


def isoformat(value):
    return None if value is None else value.isoformat(timespec="seconds") + "Z"
