"""librrd through one native lock. librrd is not thread-safe (its error buffer and graph state are
process-global), and its calls run in eventlet's native thread pool: two at once (a graph while a
sample is stored) corrupted the heap and killed the metrics service ("realloc(): invalid next
size"). Every module imports this instead of `rrdtool`; the lock is a real OS lock (eventlet's
patched one is green) held for the call, or for a batch of them (held())."""
import functools

import rrdtool as _rrdtool
from eventlet import patcher

# Re-entrant: a batch of calls (held()) takes it once, and each call in it takes it again.
_LOCK = patcher.original("threading").RLock()
OperationalError = _rrdtool.OperationalError


def held():
    """The lock for a run of calls in one native thread (a host's batch of samples): taken once
    instead of per call, so concurrent batches do not hand it (and the GIL) back and forth at
    every update. Use as `with held(): ...`."""
    return _LOCK


def _one_at_a_time(call):
    @functools.wraps(call)
    def locked(*args, **kwargs):
        with _LOCK:
            return call(*args, **kwargs)
    return locked


create = _one_at_a_time(_rrdtool.create)
update = _one_at_a_time(_rrdtool.update)
tune = _one_at_a_time(_rrdtool.tune)
info = _one_at_a_time(_rrdtool.info)
last = _one_at_a_time(_rrdtool.last)
xport = _one_at_a_time(_rrdtool.xport)
dump = _one_at_a_time(_rrdtool.dump)
graphv = _one_at_a_time(_rrdtool.graphv)
