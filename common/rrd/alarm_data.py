"""The raw samples an alarm judges: one metric of one instance (the summed series of
get_instance_metrics: cpu_percent, memory_mib, ...) or of one host (loadavg, memory_free_kib,
memory_total_kib), as [(unix ts, value or None)] between `start` and `end` (unix seconds) at the
finest resolution rrdtool keeps for that time. Blocking (rrdtool); the service calls it in a
native thread."""
import os

from common.rrd import lib as rrdtool

from common.rrd.read import SERIES, rrd_path_arg, series
from common.rrd.store import canonical_instance_id, checked_host_name

HOST_METRICS = ("loadavg", "memory_free_kib", "memory_total_kib")
INSTANCE_METRICS = SERIES


def instance_samples(store, instance_id, metric, start, end):
    """[] when the instance has no file (yet, or any more): every period is then missing."""
    instance_id = canonical_instance_id(instance_id)
    if not os.path.exists(store.path_of(instance_id)):
        return []
    found = series(store, instance_id, int(end) - int(start), end=int(end), only=metric)
    return [tuple(point) for point in found["series"][metric]]


def host_samples(store, host, metric, start, end):
    path = store.host_path(checked_host_name(host))
    if not os.path.exists(path) or metric not in store.names_of(path):
        return []
    result = rrdtool.xport(*store.daemon_args, "--start", str(int(start)), "--end", str(int(end)),
                           f"DEF:v={rrd_path_arg(path)}:{metric}:AVERAGE", "XPORT:v")
    meta = result["meta"]
    return [(meta["start"] + (i + 1) * meta["step"], row[0]) for i, row in enumerate(result["data"])]
