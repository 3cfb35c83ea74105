"""Sequence numbers that order what the agent reports about a domain.

Events (libvirt's callbacks, SSH readiness) and RPC answers travel separately and may arrive out of
order; a listener keeps, per instance, only what carries a higher `seq` than what it has seen.

`next_seq()` is strictly increasing within the process and never below `time.time_ns()`, so the
numbers keep growing across agent restarts (as long as the host's clock does not step back further
than the restart took). It is called from libvirt's native event-loop thread and from greenthreads:
the lock is a native one, held only for two integer operations, so a greenthread never waits on it
for long enough to matter to the hub.
"""
import time

from eventlet import patcher

_lock = patcher.original("threading").Lock()
_last = 0


def next_seq():
    global _last
    with _lock:
        _last = max(_last + 1, time.time_ns())
        return _last


# Taken once when the agent process starts: a heartbeat with a new value tells listeners the agent
# restarted (its forwards, probes and caches are new) even if no heartbeat was missed.
PROCESS_STARTED = next_seq()
