"""The host's own sample for the `domain_stats` event (`host_sample`): per-core busy time and
memory from libvirt (what the hypervisor sees, on every driver that answers), the load average
and the per-interface byte counters from the kernel (/proc/net/dev, loopback left out).
Run in a native thread by HypervisorConnection.run."""
import os

import libvirt

PROC_NET_DEV = "/proc/net/dev"


def _core_busy_ns(conn, core):
    try:
        times = conn.getCPUStats(core)
    except libvirt.libvirtError:
        return None  # the driver cannot tell: this core's series stays unknown
    if "user" in times and "kernel" in times:
        return times["user"] + times["kernel"]
    return None


def interfaces(path=PROC_NET_DEV):
    """[{name, rx_bytes, tx_bytes}] of the host's interfaces but `lo`, sorted by name."""
    try:
        with open(path) as f:
            lines = f.readlines()[2:]  # two header lines
    except OSError:
        return []
    result = []
    for line in lines:
        name, _, counters = line.partition(":")
        name, counters = name.strip(), counters.split()
        if name == "lo" or len(counters) < 9:
            continue
        result.append({"name": name, "rx_bytes": int(counters[0]), "tx_bytes": int(counters[8])})
    return sorted(result, key=lambda i: i["name"])


def collect_host(conn):
    """{cpu_busy_ns: [per core], memory_total_kib, memory_free_kib, load_1m, interfaces}."""
    _arch, memory_mib, cores = conn.getInfo()[:3]
    return {
        "cpu_busy_ns": [_core_busy_ns(conn, core) for core in range(cores)],
        "memory_total_kib": memory_mib * 1024,
        "memory_free_kib": conn.getFreeMemory() // 1024,
        "load_1m": round(os.getloadavg()[0], 2),
        "interfaces": interfaces(),
    }
