"""How many samples per second the metrics service's store writes with 100 VMs, in the rrd layout
of issue 12 (per-vCPU/per-device data sources named like XenServer's, archives 5 s x 10 min,
1 min x 2 h, 1 h x 1 week, 1 day x 1 year, each AVERAGE/MIN/MAX) against the layout before it
(7 summed data sources, 10 s step, AVERAGE+MAX at full resolution for a day, 1-minute averages
for a week), reimplemented here as it wrote (rrdtool.last, then one update), in the same run,
both at a 5 s step. The new store keeps each file's last update time and data source names in
memory, so a sample is one rrdtool call instead of two.

Each VM has 2 vCPUs, one disk and one NIC; every round stores one sample per VM, one step (5 s of
rrd time) after the last, on files that already exist (creation is timed apart). The time
includes what the service does per sample besides rrdtool (naming the data sources, formatting).
Files go to a temp directory (tmpfs or not: printed). The machine's load average is printed.

    .venv/bin/python bench/metrics_store.py [--vms 100] [--rounds 60] [--attempts 3]
"""
import argparse
import os
import sys
import tempfile
import time
import uuid
import warnings

import rrdtool

warnings.filterwarnings("ignore", message="(?s).*Eventlet is deprecated")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common.rrd.store import STORED, MetricsStore  # noqa: E402

STEP = 5
T0 = 1_700_000_000
OLD_DS = ("vcpus", "cpu_ns", "memory_kib", "disk_read_bytes", "disk_write_bytes", "net_rx_bytes",
          "net_tx_bytes")


def sample(i):
    return {"vcpus": 2, "vcpu_time_ns": [i * 10**9, i * 5 * 10**8], "cpu_time_ns": i * 15 * 10**8,
            "memory_kib": 1 << 20, "memory_internal_free_kib": 1 << 18,
            "disks": [{"device": "vda", "read_bytes": i * 4096, "write_bytes": i * 8192,
                       "read_reqs": i, "write_reqs": 2 * i}],
            "nics": [{"index": 0, "rx_bytes": i * 1000, "tx_bytes": i * 500}],
            "disk_read_bytes": i * 4096, "disk_write_bytes": i * 8192,
            "net_rx_bytes": i * 1000, "net_tx_bytes": i * 500}


class OldLayout:
    """The store before issue 12, as it wrote a sample."""

    def __init__(self, directory):
        self.directory = directory

    def path(self, vm):
        return os.path.join(self.directory, f"{vm}.rrd")

    def create(self, vm, start):
        minute_steps = max(1, 60 // STEP)
        args = [f"DS:{n}:{'GAUGE' if n in ('vcpus', 'memory_kib') else 'DERIVE'}:{3 * STEP}:"
                f"{'U' if n in ('vcpus', 'memory_kib') else '0'}:U" for n in OLD_DS]
        args += [f"RRA:AVERAGE:0.5:1:{86400 // STEP}", f"RRA:MAX:0.5:1:{86400 // STEP}",
                 f"RRA:AVERAGE:0.5:{minute_steps}:{7 * 86400 // (minute_steps * STEP)}"]
        rrdtool.create(self.path(vm), "--start", str(start), "--step", str(STEP), *args)

    def store(self, vm, at, s):
        path = self.path(vm)
        if at <= rrdtool.last(path):
            return "stale"
        values = ":".join(str(int(s[f])) for f in ("vcpus", "cpu_time_ns", "memory_kib",
                                                   "disk_read_bytes", "disk_write_bytes",
                                                   "net_rx_bytes", "net_tx_bytes"))
        rrdtool.update(path, f"{at}:{values}")
        return STORED


def run_new(directory, vms, rounds):
    store = MetricsStore(directory, step=STEP)
    started = time.perf_counter()
    for vm in vms:
        assert store.store(vm, T0, sample(0)) == STORED
    created = time.perf_counter() - started
    started = time.perf_counter()
    for r in range(1, rounds + 1):
        for vm in vms:
            assert store.store(vm, T0 + r * STEP, sample(r)) == STORED
    return created, time.perf_counter() - started, os.path.getsize(store.path_of(vms[0]))


def run_old(directory, vms, rounds):
    store = OldLayout(directory)
    started = time.perf_counter()
    for vm in vms:
        store.create(vm, T0 - 1)
        assert store.store(vm, T0, sample(0)) == STORED
    created = time.perf_counter() - started
    started = time.perf_counter()
    for r in range(1, rounds + 1):
        for vm in vms:
            assert store.store(vm, T0 + r * STEP, sample(r)) == STORED
    return created, time.perf_counter() - started, os.path.getsize(store.path(vms[0]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vms", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--attempts", type=int, default=3, help="interleaved runs of each layout; the best counts")
    args = parser.parse_args()
    vms = [str(uuid.uuid4()) for _ in range(args.vms)]
    samples = args.vms * args.rounds
    with tempfile.TemporaryDirectory(prefix="metrics-bench-") as tmp:
        fs = os.popen(f"df -T {tmp} | tail -1 | awk '{{print $2}}'").read().strip()
        print(f"{args.vms} VMs, {args.rounds} rounds ({samples} samples per layout), "
              f"files on {fs}, load average {os.getloadavg()[0]:.2f}")
        results = {}
        # Interleaved so a burst of load on the shared machine hits both layouts alike.
        for attempt in range(args.attempts):
            for name, run in (("old", run_old), ("new", run_new)):
                directory = os.path.join(tmp, f"{name}{attempt}")
                os.makedirs(directory)
                results.setdefault(name, []).append(run(directory, vms, args.rounds))
        for name in ("old", "new"):
            created, took, size = min(results[name], key=lambda r: r[1])
            print(f"{name:>3} layout: {samples / took:8.0f} samples/s stored "
                  f"({took * 1e6 / samples:6.0f} us each), creating {args.vms} files "
                  f"{created:.2f} s, {size // 1024} KiB per file")
        new = min(r[1] for r in results["new"])
        old = min(r[1] for r in results["old"])
        per_interval = args.vms / STEP
        print(f"new/old time per sample: {new / old:.2f}x; at a 5 s interval {args.vms} VMs need "
              f"{per_interval:.0f} samples/s: {per_interval * new / samples * 100:.1f} % of one core")


if __name__ == "__main__":
    main()
