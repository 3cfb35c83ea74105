"""Reading the rrdtool files: the summed series of `get_instance_metrics`, XenServer's
`/rrd_updates` (every data source, per consolidation function, rows newest first, XML or JSON)
and `/vm_rrd` (a whole file, `rrdtool dump`). Blocking; the service calls these in a native thread.
"""
import json
import os
import re
import tempfile
import xml.etree.ElementTree as ET

from common.rrd import lib as rrdtool

from common.errors import InvalidInput, NotFound
from common.rrd.sources import NS_PER_S, public_name, scale_of
from common.rrd.store import CONSOLIDATIONS, HOST, VM, YEAR, canonical_instance_id

# Upper bound on rows of get_instance_metrics; rrdtool consolidates to a coarser step to fit.
MAX_POINTS = 1440
# rrd_updates answers whole archives (a year of days is 365 rows, 10 min of 5 s is 120).
MAX_UPDATE_ROWS = 10000
_CPU = re.compile(r"cpu\d+$")


def rrd_path_arg(path):
    """A path as it may appear inside a DEF: rrdtool splits DEF arguments on ':'."""
    return path.replace("\\", "\\\\").replace(":", "\\:")


def _sum(vnames, anchor):
    """RPN summing `vnames`, unknowns counted as 0 unless all are; unknown if there are none
    (`anchor` is any vname of the file: a CDEF needs one)."""
    if not vnames:
        return f"{anchor},POP,UNKN"
    return ",".join([vnames[0]] + [f"{v},ADDNAN" for v in vnames[1:]])


def summary_series(names, p):
    """The series of get_instance_metrics as RPN over the data sources `names` of one file
    (vnames `p` + name): cpu_percent is of all vCPUs (the average of cpuN, 0..100)."""
    v = [p + n for n in names]
    anchor = f"{p}memory"
    cpus = [p + n for n in names if _CPU.match(n)]
    cpu = (f"{','.join(cpus)},{len(cpus)},AVG,{NS_PER_S // 100},/" if cpus
           else f"{anchor},POP,UNKN")

    def ending(prefix, suffix):
        return [x for x, n in zip(v, names)
                if n.startswith(prefix) and n.endswith(suffix) and "_iops_" not in n]
    return {
        "cpu_percent": cpu,
        "memory_mib": f"{anchor},1048576,/",
        "disk_read_bps": _sum(ending("vbd_", "_read"), anchor),
        "disk_write_bps": _sum(ending("vbd_", "_write"), anchor),
        "net_rx_bps": _sum(ending("vif_", "_rx"), anchor),
        "net_tx_bps": _sum(ending("vif_", "_tx"), anchor),
    }


SERIES = tuple(summary_series([], ""))


def _rows(result):
    """rrdtool xport's rows as (end of interval, values): row i covers
    (start + i*step, start + (i+1)*step], labelled like `rrdtool xport --showtime`."""
    meta = result["meta"]
    return [(meta["start"] + (i + 1) * meta["step"], values)
            for i, values in enumerate(result["data"])]


def series(store, instance_id, seconds, end=None, only=None):
    """The `seconds` before `end` (default: now) of an instance as {series name: [[unix_ts,
    value or None]]}; of the one series `only` when given (an alarm's metric: rrdtool then reads
    and computes only the data sources it needs)."""
    instance_id = canonical_instance_id(instance_id)
    path = store.path_of(instance_id)
    if not os.path.exists(path):
        raise NotFound(f"no metrics for instance {instance_id}")
    end = int(store.now() if end is None else end)
    args = ["--start", str(end - int(seconds)), "--end", str(end), "--maxrows", str(MAX_POINTS)]
    names = store.names_of(path)
    summary = summary_series(names, "d_")
    if only is not None:
        summary = {only: summary[only]}
        used = {token for rpn in summary.values() for token in rpn.split(",")}
        names = [n for n in names if f"d_{n}" in used]
    args += [f"DEF:d_{n}={rrd_path_arg(path)}:{n}:AVERAGE" for n in names]
    for name, rpn in summary.items():
        args += [f"CDEF:s_{name}={rpn}", f"XPORT:s_{name}"]
    result = rrdtool.xport(*store.daemon_args, *args)
    rows = _rows(result)
    out = {name: [] for name in summary}
    for ts, values in rows:
        for name, value in zip(summary, values):
            out[name].append([ts, None if value is None else round(value, 3)])
    meta = result["meta"]
    return {"instance_id": instance_id, "step": meta["step"],
            "start": rows[0][0] if rows else meta["start"],
            "end": rows[-1][0] if rows else meta["end"], "series": out}


def _files(store, vm_uuid, host, only):
    """{(kind, id): path} the answer covers (VMs among `only` when it is not None)."""
    if vm_uuid is not None:
        vm_uuid = canonical_instance_id(vm_uuid)
        path = store.path_of(vm_uuid)
        if not os.path.exists(path):
            raise NotFound(f"no metrics for instance {vm_uuid}")
        files = {(VM, vm_uuid): path}
    else:
        wanted = None if only is None else {canonical_instance_id(i) for i in only}
        files = {(VM, i): store.path_of(i) for i in store.known(VM) if wanted is None or i in wanted}
    if host:
        files.update({(HOST, h): store.host_path(h) for h in store.known(HOST)})
    return files


def rrd_updates(store, start, interval=None, cf=None, host=False, vm_uuid=None, as_json=False,
                only=None):
    """XenServer's /rrd_updates: every data source of the VMs (one, with `vm_uuid`; and of the
    hosts with `host`) since `start`, legend `CF:vm|host:<id>:<ds>`, rows newest first, values
    in XenServer's units (cpuN 0..1). `interval` picks the archive (seconds per row), `cf` one
    consolidation function (else all three); `only`: the VMs to include (None: all)."""
    end = int(store.now())
    start = int(start)
    if start >= end:
        raise InvalidInput("start must be in the past", {"start": ["not in the past"]})
    start = max(start, end - YEAR)  # nothing older is kept
    step = int(interval) if interval else store.step
    files = _files(store, vm_uuid, host, only)
    cfs = (cf,) if cf else CONSOLIDATIONS
    args = ["--start", str(start), "--end", str(end), "--step", str(step),
            "--maxrows", str(MAX_UPDATE_ROWS)]
    legend = []
    for n, ((kind, ident), path) in enumerate(sorted(files.items())):
        for ds in store.names_of(path):
            for c in cfs:
                vname = f"f{n}_{ds}_{c}"
                args.append(f"DEF:{vname}={rrd_path_arg(path)}:{ds}:{c}")
                scale = scale_of(ds)
                if scale != 1:
                    args.append(f"CDEF:{vname}_x={vname},{NS_PER_S},/")
                    vname += "_x"
                args.append(f"XPORT:{vname}")
                legend.append(f"{c}:{kind}:{ident}:{public_name(ds)}")
    if not legend:
        return render({"start": start, "end": end, "step": step}, [], [], as_json)
    result = rrdtool.xport(*store.daemon_args, *args)
    rows = list(reversed(_rows(result)))  # XenServer: newest first
    return render(result["meta"], legend, rows, as_json)


def render(meta, legend, rows, as_json):
    start = rows[-1][0] if rows else meta["start"]
    end = rows[0][0] if rows else meta["end"]
    head = {"start": start, "step": meta["step"], "end": end, "rows": len(rows),
            "columns": len(legend)}
    if as_json:
        return json.dumps({"meta": {**head, "legend": legend},
                           "data": [{"t": t, "values": list(values)} for t, values in rows]})
    root = ET.Element("xport")
    meta_el = ET.SubElement(root, "meta")
    for tag, value in head.items():
        ET.SubElement(meta_el, tag).text = str(value)
    legend_el = ET.SubElement(meta_el, "legend")
    for entry in legend:
        ET.SubElement(legend_el, "entry").text = entry
    data = ET.SubElement(root, "data")
    for ts, values in rows:
        row = ET.SubElement(data, "row")
        ET.SubElement(row, "t").text = str(ts)
        for value in values:
            # rrdtool's own formatting: %0.10e, NaN for unknown.
            ET.SubElement(row, "v").text = "NaN" if value is None else f"{value:0.10e}"
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def vm_rrd(store, instance_id):
    """The whole file of an instance as rrdtool's XML dump (XenServer's /vm_rrd)."""
    path = store.path_of(instance_id)
    if not os.path.exists(path):
        raise NotFound(f"no metrics for instance {canonical_instance_id(instance_id)}")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "dump.xml")
        rrdtool.dump(*store.daemon_args, path, out)
        with open(out) as f:
            return f.read()
