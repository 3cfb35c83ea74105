"""PNG graphs (`rrdtool graph`) of an instance's or a host's metrics over the last hour, day,
week or month, cached on disk for a short time.

Each period reads the finest archive that covers it (1 h: 1-minute rows, 1 d and 1 w: hourly,
1 m: daily), so a cached PNG cannot miss anything before one such row has passed; the cache keeps
it for that step, at most `cache_seconds`. Cache key: entity, metric, period and the step (a
file made with another step draws anew). Blocking: the service runs it in a native thread.
"""
import os
import re
import tempfile

from common.rrd import lib as rrdtool

from common.errors import InvalidInput, NotFound
from common.rrd.read import rrd_path_arg
from common.rrd.sources import NS_PER_S
from common.rrd.store import DAY, HOUR, MINUTE, VM, WEEK, canonical_instance_id, checked_host_name

PERIODS = {"1h": (HOUR, MINUTE), "1d": (DAY, HOUR), "1w": (WEEK, HOUR), "1m": (30 * DAY, DAY)}
VM_METRICS = ("cpu", "memory", "disk", "network")
HOST_METRICS = ("cpu", "memory", "network", "load")
WIDTH, HEIGHT = 640, 200
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
DEFAULT_CACHE_SECONDS = 60
MIN_LAYER_PIXELS = 20
_CPU = re.compile(r"cpu(\d+)$")


def checked(kind, metric, period):
    """InvalidInput naming `metric` or `period` unless both are known for this kind."""
    errors = {}
    allowed = VM_METRICS if kind == VM else HOST_METRICS
    if metric not in allowed:
        errors["metric"] = [f"one of {', '.join(allowed)}"]
    if period not in PERIODS:
        errors["period"] = [f"one of {', '.join(PERIODS)}"]
    if errors:
        raise InvalidInput(f"invalid value for: {', '.join(sorted(errors))}", errors)


def _color(n):
    return PALETTE[n % len(PALETTE)]


def _metric(kind, metric, names, s):
    """(options, CDEFs, [(vname, label)]) drawing `metric` from data sources `names`, whose vnames
    are the name plus the suffix `s` (one set per archive layer)."""
    cdefs, series = [], []
    if metric == "cpu":
        cpus = sorted((n for n in names if _CPU.match(n)), key=lambda n: int(_CPU.match(n).group(1)))
        cdefs += [f"CDEF:{n}_pct{s}={n}{s},{NS_PER_S // 100},/" for n in cpus]
        if len(cpus) > 8:  # a many-core host: the average, not sixteen tangled lines
            cdefs.append(f"CDEF:avg_pct{s}={','.join(f'{c}_pct{s}' for c in cpus)},{len(cpus)},AVG")
            series.append((f"avg_pct{s}", f"average of {len(cpus)} cores"))
        else:
            series += [(f"{n}_pct{s}", n) for n in cpus]
        return ["--vertical-label", "percent", "--lower-limit", "0", "--upper-limit", "100",
                "--rigid"], cdefs, series
    if metric == "memory":
        if kind == VM:
            cdefs += [f"CDEF:used_b{s}=memory{s},memory_int_free{s},1024,*,-"]
            series = [(f"memory{s}", "allocated"), (f"used_b{s}", "used inside the guest")]
        else:
            cdefs += [f"CDEF:total_b{s}=memory_total_kib{s},1024,*",
                      f"CDEF:used_b{s}=memory_total_kib{s},memory_free_kib{s},-,1024,*"]
            series = [(f"total_b{s}", "total"), (f"used_b{s}", "used")]
        return ["--vertical-label", "bytes", "--base", "1024", "--lower-limit", "0"], cdefs, series
    if metric == "load":
        return ["--vertical-label", "load", "--lower-limit", "0"], cdefs, [
            (f"loadavg{s}", "1-minute load average")]
    prefixes = {"disk": ("vbd_",), "network": ("vif_", "pif_")}[metric]
    series = [(f"{n}{s}", n) for n in names if n.startswith(prefixes) and "_iops_" not in n]
    if not series:  # no device yet: an empty graph that says so, not an error
        cdefs.append(f"CDEF:none{s}={names[0]}{s},POP,UNKN")
        series = [(f"none{s}", "no devices")]
    return ["--vertical-label", "bytes/s", "--base", "1024", "--lower-limit", "0"], cdefs, series


def elements(kind, metric, names, path, step, end, finer=()):
    """rrdtool graph arguments drawing `metric` from a file with data sources `names`: the
    archive of `step` over the whole period, then the finer archives where they reach, drawn on
    top in the same colours (`finer`: [(seconds per row, seconds kept)], coarsest first): the
    last 10 minutes of an hour's graph at the 5 s step, so a new instance does not show nothing
    for its first minute. (Layers are drawn, not merged in a CDEF: rrdtool computes a CDEF only
    where all its DEFs have rows.)"""
    p = rrd_path_arg(path)
    options, args = [], []
    for k, (row, kept) in enumerate([(step, None)] + list(finer)):
        s = f"_{k}"
        window = "" if kept is None else f":start={end - kept}:end={end}"
        args += [f"DEF:{n}{s}={p}:{n}:AVERAGE:step={row}{window}" for n in names]
        options, cdefs, series = _metric(kind, metric, names, s)
        args += cdefs
        args += [f"LINE2:{vname}{_color(i)}" + (f":{label}" if k == 0 else "")
                 for i, (vname, label) in enumerate(series)]
    return options + args


class Graphs:
    """Graphs of the files of `store`, cached under `cache_dir`."""

    def __init__(self, store, cache_dir, cache_seconds=DEFAULT_CACHE_SECONDS):
        self.store = store
        self.cache_dir = cache_dir
        self.cache_seconds = float(cache_seconds)
        os.makedirs(cache_dir, exist_ok=True)

    def instance_graph(self, instance_id, metric, period):
        instance_id = canonical_instance_id(instance_id)
        return self._graph(VM, instance_id, self.store.path_of(instance_id), metric, period)

    def host_graph(self, host, metric, period):
        host = checked_host_name(host)
        return self._graph("host", host, self.store.host_path(host), metric, period)

    def instance_has_samples(self, instance_id):
        """Whether there is anything to draw (the file appears with the first sample)."""
        return os.path.exists(self.store.path_of(canonical_instance_id(instance_id)))

    def host_has_samples(self, host):
        return os.path.exists(self.store.host_path(checked_host_name(host)))

    def _graph(self, kind, ident, path, metric, period):
        checked(kind, metric, period)
        if not os.path.exists(path):
            raise NotFound(f"no metrics for {kind} {ident}")
        seconds, row_step = PERIODS[period]
        step = max(row_step, self.store.step)
        cached = os.path.join(self.cache_dir, f"{kind}-{ident}-{metric}-{period}-{step}.png")
        now = self.store.now()
        try:
            if now - os.stat(cached).st_mtime < min(step, self.cache_seconds):
                with open(cached, "rb") as f:
                    return f.read()
        except FileNotFoundError:
            pass
        end = int(now)
        args = ["--start", str(end - seconds), "--end", str(end),
                "--width", str(WIDTH), "--height", str(HEIGHT), "--imgformat", "PNG",
                "--title", f"{ident} {metric}, last {period}", "--slope-mode"]
        finer = [(row, kept) for row, kept in ((MINUTE, 2 * HOUR), (self.store.step, 10 * MINUTE))
                 if row < step and kept * WIDTH >= MIN_LAYER_PIXELS * seconds]
        # (coarsest first: the finest is drawn last; a layer narrower than a few pixels is left
        # out: rrdtool cannot spread a few rows over a pixel wider than them)
        args += elements(kind, metric, self.store.names_of(path), path, step, end, finer)
        image = rrdtool.graphv("-", *self.store.daemon_args, *args)["image"]
        # Written whole then renamed: a concurrent reader never sees half a PNG.
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(image)
        os.utime(tmp, (now, now))
        os.replace(tmp, cached)
        return image
