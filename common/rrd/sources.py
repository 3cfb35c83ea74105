"""rrdtool data sources named like XenServer's, from the host agents' samples.

VM files: `cpu<N>` (per vCPU), `memory` (bytes the domain has), `memory_internal_free` (KiB free
inside the guest, from its balloon driver; stored as `memory_int_free`: rrdtool's names are at
most 19 characters), `vbd_<dev>_read|write` (bytes/s),
`vbd_<dev>_iops_read|iops_write` (requests/s), `vif_<n>_rx|tx` (bytes/s).
Host files: `cpu<N>` (per core), `memory_total_kib`, `memory_free_kib`, `loadavg`,
`pif_<interface>_rx|tx` (bytes/s).

Counters are stored raw (DERIVE, min 0) and turned into rates by rrdtool itself, so a lost or late
sample costs one step of data instead of a wrong spike, and a counter that goes backwards (the
domain restarted) becomes "unknown". `cpu<N>` is stored as nanoseconds of CPU (rrdtool's rate:
ns per second) and read as XenServer's 0..1 through SCALE.
"""
import functools
import re
import zlib

# rrdtool allows 19 characters; XenServer's name is longer. Stored short, read under XenServer's.
PUBLIC_NAMES = {"memory_int_free": "memory_internal_free"}
GAUGES = frozenset({"memory", "memory_int_free", "memory_total_kib", "memory_free_kib",
                    "loadavg"})
# Present in every file, so every file has something to anchor an expression on (rrd_read.py).
VM_BASE = ("memory", "memory_int_free")
HOST_BASE = ("memory_total_kib", "memory_free_kib", "loadavg")
NS_PER_S = 1_000_000_000
MAX_DS_NAME = 19  # rrdtool's limit
_CPU = re.compile(r"cpu\d+$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def kind_of(name):
    return "GAUGE" if name in GAUGES else "DERIVE"


def public_name(name):
    """The XenServer name of a stored data source."""
    return PUBLIC_NAMES.get(name, name)


def scale_of(name):
    """What a stored value is multiplied by to read it in XenServer's unit."""
    return 1 / NS_PER_S if _CPU.match(name) else 1


@functools.lru_cache(maxsize=4096)  # every sample names its devices again: made once
def device_name(prefix, device, suffix):
    """`<prefix>_<device>_<suffix>` with the device made safe for rrdtool and at most 19
    characters in all; a device name too long for that becomes a checksum (stable across runs)."""
    safe = _UNSAFE.sub("_", str(device))
    name = f"{prefix}_{safe}_{suffix}"
    if len(name) > MAX_DS_NAME:
        name = f"{prefix}_{zlib.crc32(safe.encode()):08x}_{suffix}"[:MAX_DS_NAME]
    return name


def _kib_to_bytes(kib):
    return None if kib is None else kib * 1024


def vm_values(sample):
    """{data source: value or None} of one domain sample (hostagent DomainSampleSchema)."""
    values = {"memory": _kib_to_bytes(sample.get("memory_kib")),
              "memory_int_free": sample.get("memory_internal_free_kib")}
    for n, ns in enumerate(sample.get("vcpu_time_ns") or ()):
        values[f"cpu{n}"] = ns
    for disk in sample.get("disks") or ():
        dev = disk.get("device")
        values[device_name("vbd", dev, "read")] = disk.get("read_bytes")
        values[device_name("vbd", dev, "write")] = disk.get("write_bytes")
        values[device_name("vbd", dev, "iops_read")] = disk.get("read_reqs")
        values[device_name("vbd", dev, "iops_write")] = disk.get("write_reqs")
    for nic in sample.get("nics") or ():
        values[f"vif_{int(nic['index'])}_rx"] = nic.get("rx_bytes")
        values[f"vif_{int(nic['index'])}_tx"] = nic.get("tx_bytes")
    return values


def host_values(sample):
    """{data source: value or None} of a host sample (hostagent HostSampleSchema)."""
    values = {"memory_total_kib": sample.get("memory_total_kib"),
              "memory_free_kib": sample.get("memory_free_kib"),
              "loadavg": sample.get("load_1m")}
    for n, ns in enumerate(sample.get("cpu_busy_ns") or ()):
        values[f"cpu{n}"] = ns
    for interface in sample.get("interfaces") or ():
        values[device_name("pif", interface["name"], "rx")] = interface.get("rx_bytes")
        values[device_name("pif", interface["name"], "tx")] = interface.get("tx_bytes")
    return values


def format_value(name, value):
    return _format(value, kind_of(name) == "DERIVE")


def values_formatter(names):
    """A function of a {data source: value} dict giving the values of `names`, in that order,
    as `rrdtool update` takes them ("1:2:U"); the kinds looked up once, not per sample."""
    derives = tuple((name, kind_of(name) == "DERIVE") for name in names)

    def format_values(values):
        get = values.get
        return ":".join([_format(get(name), derive) for name, derive in derives])
    return format_values


def _format(value, derive):
    if value is None:
        return "U"
    if derive:
        return str(int(value))  # rrdtool parses counters as digits: integers written out in full
    return repr(float(value))
