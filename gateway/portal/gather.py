"""Several RPCs of one page at once: a page waits for its slowest piece of data, not for the sum.

nameko's standalone proxy keeps replies by correlation id, so one pooled proxy can have several
calls outstanding (`call_async`). Every reply is collected, even after a failure, so the proxy goes
back to the pool with nothing pending; then the first failure in the order given is raised (a page
lists its calls in the order whose refusal should win: "no such course" before "not its manager").
A call marked `optional` gives None when its service is not there, and the page goes on without
that panel (the graphs must not take the instance page down with the metrics service).
"""
from nameko.exceptions import UnknownService

from gateway.rpc_pool import ServiceUnavailable


class optional(tuple):
    """A call (method proxy, *args) whose service may be missing: its result is then None."""
    def __new__(cls, method, *args):
        return super().__new__(cls, (method, *args))


def gather(*calls):
    """calls: (method proxy, *args) tuples, e.g. (rpc.accounts.get_project, actor, 3).
    Returns the results in the same order."""
    replies = [method.call_async(*args) for method, *args in calls]
    results, failure = [], None
    for call, reply in zip(calls, replies):
        try:
            results.append(reply.result())
        except (ServiceUnavailable, UnknownService) as exc:
            results.append(None)
            if not isinstance(call, optional):
                failure = failure or exc
        except Exception as exc:  # noqa: BLE001  (raised below, after every reply is in)
            results.append(None)
            failure = failure or exc
    if failure is not None:
        raise failure
    return results
