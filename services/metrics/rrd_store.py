"""Per-instance round-robin databases (rrdtool): one file per instance, fixed size forever.

Layout under the metrics directory:
    instances/<instance_id>.rrd   samples of one instance
    deleted/<instance_id>         tombstone: the instance is gone, do not recreate its file

Counters are stored raw (DERIVE, min 0) and turned into rates by rrdtool itself, so a lost or
late sample costs one step of data instead of a wrong spike, and a counter that goes backwards
(the domain was restarted) becomes "unknown" rather than a huge negative or wrapped rate.
Conversions to what people read (percent, MiB, bytes/s) happen at read time in rrdtool CDEFs.

No nameko here: the service wraps this in a DependencyProvider (services/metrics/dependencies.py).
"""
import collections
import os
import threading
import time
import uuid
import xml.etree.ElementTree as ET

import rrdtool

from common.errors import InvalidInput, NotFound

# (ds name, rrdtool type, field of a domain sample). Order is the order of values in an update.
DATA_SOURCES = (
    ("vcpus", "GAUGE", "vcpus"),
    ("cpu_ns", "DERIVE", "cpu_time_ns"),
    ("memory_kib", "GAUGE", "memory_kib"),
    ("disk_read_bytes", "DERIVE", "disk_read_bytes"),
    ("disk_write_bytes", "DERIVE", "disk_write_bytes"),
    ("net_rx_bytes", "DERIVE", "net_rx_bytes"),
    ("net_tx_bytes", "DERIVE", "net_tx_bytes"),
)

# Series handed to readers, as RPN over the data sources (`{p}` is the per-file vname prefix).
# cpu_ns is nanoseconds of CPU per second once DERIVE has made a rate of it: / 1e9 * 100 gives
# percent of one vCPU, / vcpus gives percent of the whole instance (0..100, what a flavor buys).
SERIES = {
    "cpu_percent": "{p}vcpus,0,GT,{p}cpu_ns,10000000,/,{p}vcpus,/,UNKN,IF",
    "memory_mib": "{p}memory_kib,1024,/",
    "disk_read_bps": "{p}disk_read_bytes",
    "disk_write_bps": "{p}disk_write_bytes",
    "net_rx_bps": "{p}net_rx_bytes",
    "net_tx_bps": "{p}net_tx_bytes",
}

DAY = 86400
WEEK = 7 * DAY
# Upper bound on rows returned by one read; rrdtool consolidates to a coarser step to fit
# (a day at the default 10 s step comes back as 1-minute averages).
MAX_POINTS = 1440
# How long a deleted instance's tombstone keeps late (redelivered) samples from recreating it.
TOMBSTONE_SECONDS = DAY

# What became of a sample given to MetricsStore.store.
STORED = "stored"
STALE = "stale"       # not newer than what the file holds: a redelivery or an old sample
DELETED = "deleted"   # the instance was deleted; its file is not recreated


def canonical_instance_id(instance_id):
    """The instance id as a lowercase hyphenated UUID, safe to put in a path; else InvalidInput."""
    try:
        return str(uuid.UUID(str(instance_id)))
    except (TypeError, ValueError, AttributeError):
        raise InvalidInput(f"instance_id {instance_id!r} is not a UUID",
                           {"instance_id": ["not a UUID"]}) from None


def rrd_path_arg(path):
    """A path as it may appear inside a DEF: rrdtool splits DEF arguments on ':'."""
    return path.replace("\\", "\\\\").replace(":", "\\:")


def create_args(step):
    """DS and RRA definitions for a new file, scaled to `step` seconds."""
    heartbeat = 3 * step  # two missed samples in a row are tolerated, a third makes a gap
    minute_steps = max(1, 60 // step)
    args = []
    for name, kind, _field in DATA_SOURCES:
        minimum = "0" if kind == "DERIVE" else "U"
        args.append(f"DS:{name}:{kind}:{heartbeat}:{minimum}:U")
    args += [
        f"RRA:AVERAGE:0.5:1:{DAY // step}",                              # full resolution, 1 day
        f"RRA:MAX:0.5:1:{DAY // step}",                                  # peaks at full resolution
        f"RRA:AVERAGE:0.5:{minute_steps}:{WEEK // (minute_steps * step)}",  # ~1 minute, 1 week
    ]
    return args


def format_value(value):
    if value is None:
        return "U"
    # DERIVE values must be integers written out in full: rrdtool parses counters as digits.
    return str(int(value))


class MetricsStore:
    """rrdtool files of all instances under `directory`; `step` seconds between samples."""

    def __init__(self, directory, step=10, now=time.time):
        self.directory = directory
        self.step = int(step)
        if self.step < 1:
            raise ValueError("STEP must be at least 1 second")
        self.now = now
        self.instances_dir = os.path.join(directory, "instances")
        self.tombstones_dir = os.path.join(directory, "deleted")
        os.makedirs(self.instances_dir, exist_ok=True)
        os.makedirs(self.tombstones_dir, exist_ok=True)
        # rrdtool calls are short C calls, but create-then-update and check-then-update must not
        # interleave with another greenthread touching the same file.
        self._locks = collections.defaultdict(threading.Lock)

    def path_of(self, instance_id):
        return os.path.join(self.instances_dir, f"{canonical_instance_id(instance_id)}.rrd")

    def _tombstone_of(self, instance_id):
        return os.path.join(self.tombstones_dir, canonical_instance_id(instance_id))

    def known_instances(self):
        names = sorted(os.listdir(self.instances_dir))
        return [name[:-4] for name in names if name.endswith(".rrd")]

    # -- writing --------------------------------------------------------------------------

    def store(self, instance_id, at, sample):
        """Add one sample (a dict with the fields of DATA_SOURCES) taken at unix time `at`.

        Returns STORED, or why it was dropped instead of raising: STALE (not newer than what the
        file holds; at-least-once delivery brings samples again) or DELETED.
        """
        instance_id = canonical_instance_id(instance_id)
        path = self.path_of(instance_id)
        # Whole seconds: rrdtool reports a file's last update in whole seconds, so comparing
        # against it is exact only if that is all we ever write.
        at = int(at)
        with self._locks[instance_id]:
            if not os.path.exists(path):
                if os.path.exists(self._tombstone_of(instance_id)):
                    return DELETED
                self._create(path, at - 1)
            elif at <= rrdtool.last(path):
                return STALE
            values = ":".join(format_value(sample.get(field)) for _n, _k, field in DATA_SOURCES)
            try:
                rrdtool.update(path, f"{at}:{values}")
            except rrdtool.OperationalError as exc:
                # Another process (a second replica on the same directory) got there first.
                if "illegal attempt to update" in str(exc):
                    return STALE
                raise
        return STORED

    def _create(self, path, start):
        try:
            rrdtool.create(path, "--start", str(start), "--step", str(self.step), "--no-overwrite",
                           *create_args(self.step))
        except rrdtool.OperationalError:
            if not os.path.exists(path):  # anything but "a racing replica created it" is real
                raise

    def delete(self, instance_id):
        """Forget an instance. Returns whether there was a file; safe to repeat."""
        instance_id = canonical_instance_id(instance_id)
        with self._locks[instance_id]:
            tombstone = self._tombstone_of(instance_id)
            with open(tombstone, "w"):
                pass
            os.utime(tombstone, (self.now(), self.now()))  # aged by our clock, like pruning
            try:
                os.unlink(self.path_of(instance_id))
                deleted = True
            except FileNotFoundError:
                deleted = False
        self._locks.pop(instance_id, None)
        self._prune_tombstones()
        return deleted

    def _prune_tombstones(self):
        cutoff = self.now() - TOMBSTONE_SECONDS
        for name in os.listdir(self.tombstones_dir):
            path = os.path.join(self.tombstones_dir, name)
            try:
                if os.stat(path).st_mtime < cutoff:
                    os.unlink(path)
            except FileNotFoundError:
                pass

    # -- reading --------------------------------------------------------------------------

    def _xport(self, files, start, end):
        """rrdtool xport of SERIES for `files` ({label: path}); returns (meta, legend, rows).

        Row i of rrdtool's answer covers (start + i*step, start + (i+1)*step]; it is labelled by
        the end of that interval, as `rrdtool xport --showtime` does.
        """
        args = ["--start", str(int(start)), "--end", str(int(end)), "--maxrows", str(MAX_POINTS)]
        legend = []
        for n, (label, path) in enumerate(files.items()):
            prefix = f"i{n}_"
            for ds, _kind, _field in DATA_SOURCES:
                args.append(f"DEF:{prefix}{ds}={rrd_path_arg(path)}:{ds}:AVERAGE")
            for name, rpn in SERIES.items():
                args.append(f"CDEF:{prefix}{name}={rpn.format(p=prefix)}")
                args.append(f"XPORT:{prefix}{name}")
                legend.append((label, name))
        result = rrdtool.xport(*args)
        meta = result["meta"]
        rows = [(meta["start"] + (i + 1) * meta["step"], values)
                for i, values in enumerate(result["data"])]
        return meta, legend, rows

    def series(self, instance_id, seconds):
        """The last `seconds` of an instance as {series name: [[unix_ts, value or None]]}."""
        instance_id = canonical_instance_id(instance_id)
        path = self.path_of(instance_id)
        if not os.path.exists(path):
            raise NotFound(f"no metrics for instance {instance_id}")
        end = int(self.now())
        meta, legend, rows = self._xport({instance_id: path}, end - int(seconds), end)
        series = {name: [] for name in SERIES}
        for ts, values in rows:
            for (_label, name), value in zip(legend, values):
                series[name].append([ts, None if value is None else round(value, 3)])
        return {
            "instance_id": instance_id,
            "step": meta["step"],
            "start": rows[0][0] if rows else meta["start"],
            "end": rows[-1][0] if rows else meta["end"],
            "series": series,
        }

    def rrd_updates(self, start, instance_id=None):
        """Everything since `start` as the XML of `rrdtool xport` in XenServer's /rrd_updates
        shape: legend entries `AVERAGE:vm:<instance_id>:<series>`, rows oldest first."""
        end = int(self.now())
        start = int(start)
        if start >= end:
            raise InvalidInput("start must be in the past", {"start": ["not in the past"]})
        start = max(start, end - WEEK)  # nothing older is kept
        if instance_id is not None:
            instance_id = canonical_instance_id(instance_id)
            path = self.path_of(instance_id)
            if not os.path.exists(path):
                raise NotFound(f"no metrics for instance {instance_id}")
            files = {instance_id: path}
        else:
            files = {i: os.path.join(self.instances_dir, f"{i}.rrd") for i in self.known_instances()}
        if not files:
            return xport_xml(start, end, self.step, [], [])
        meta, legend, rows = self._xport(files, start, end)
        entries = [f"AVERAGE:vm:{label}:{name}" for label, name in legend]
        first = rows[0][0] if rows else meta["start"]
        return xport_xml(first, meta["end"], meta["step"], entries, rows)


def xport_xml(start, end, step, entries, rows):
    root = ET.Element("xport")
    meta = ET.SubElement(root, "meta")
    for tag, value in (("start", start), ("step", step), ("end", end), ("rows", len(rows)),
                       ("columns", len(entries))):
        ET.SubElement(meta, tag).text = str(value)
    legend = ET.SubElement(meta, "legend")
    for entry in entries:
        ET.SubElement(legend, "entry").text = entry
    data = ET.SubElement(root, "data")
    for ts, values in rows:
        row = ET.SubElement(data, "row")
        ET.SubElement(row, "t").text = str(ts)
        for value in values:
            # rrdtool's own formatting: %0.10e, NaN for unknown.
            ET.SubElement(row, "v").text = "NaN" if value is None else f"{value:0.10e}"
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
