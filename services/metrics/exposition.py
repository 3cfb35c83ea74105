"""The newest value of every VM's and host's data source in Prometheus' format, for sites that
already run Prometheus: a collector on the metrics service's PROMETHEUS_PORT (common/prometheus.py).
Values are rrdtool's (rates per second for counters, cpu 0..1), from the finest archive: the
newest known row of the last few steps, read with rrd_updates at each scrape (in a native thread).
"""
import json
import re

from eventlet import tpool
from prometheus_client.core import GaugeMetricFamily

from common.rrd import read as rrd_read

ROWS_BACK = 4  # steps looked back for a known value (a sample may be a step late)

# kind -> [(data source pattern, family, help, the device label the pattern's group fills)]
FAMILIES = {
    "vm": [
        (r"cpu(\d+)", "labcloud_vm_cpu_utilisation", "vCPU use, 0..1", "vcpu"),
        (r"memory", "labcloud_vm_memory_bytes", "memory the domain has", None),
        (r"memory_internal_free", "labcloud_vm_memory_internal_free_kib", "free inside the guest (balloon)", None),
        (r"vbd_(.+)_iops_read", "labcloud_vm_disk_read_iops", "disk read requests/s", "device"),
        (r"vbd_(.+)_iops_write", "labcloud_vm_disk_write_iops", "disk write requests/s", "device"),
        (r"vbd_(.+)_read", "labcloud_vm_disk_read_bytes_per_second", "disk bytes read/s", "device"),
        (r"vbd_(.+)_write", "labcloud_vm_disk_write_bytes_per_second", "disk bytes written/s", "device"),
        (r"vif_(\d+)_rx", "labcloud_vm_network_rx_bytes_per_second", "bytes received/s", "vif"),
        (r"vif_(\d+)_tx", "labcloud_vm_network_tx_bytes_per_second", "bytes sent/s", "vif"),
    ],
    "host": [
        (r"cpu(\d+)", "labcloud_host_cpu_utilisation", "core use, 0..1", "cpu"),
        (r"memory_total_kib", "labcloud_host_memory_total_kib", "host memory", None),
        (r"memory_free_kib", "labcloud_host_memory_free_kib", "free host memory", None),
        (r"loadavg", "labcloud_host_load1", "1-minute load average", None),
        (r"pif_(.+)_rx", "labcloud_host_network_rx_bytes_per_second", "bytes received/s", "interface"),
        (r"pif_(.+)_tx", "labcloud_host_network_tx_bytes_per_second", "bytes sent/s", "interface"),
    ],
}
ENTITY_LABEL = {"vm": "instance_id", "host": "host"}


def newest_values(store):
    """[(kind, id, data source, value)]: each column's newest known value."""
    now = int(store.now())
    doc = json.loads(rrd_read.rrd_updates(store, now - ROWS_BACK * store.step, cf="AVERAGE", host=True,
                                          as_json=True))
    found = []
    for column, entry in enumerate(doc["meta"]["legend"]):
        _cf, kind, ident, ds = entry.split(":", 3)
        for row in doc["data"]:  # newest first
            value = row["values"][column]
            if value is not None:
                found.append((kind, ident, ds, value))
                break
    return found


def families(values):
    made = {}
    for kind, ident, ds, value in values:
        for pattern, name, help_text, device_label in FAMILIES[kind]:
            match = re.fullmatch(pattern, ds)
            if not match:
                continue
            labels = [ENTITY_LABEL[kind]] + ([device_label] if device_label else [])
            family = made.setdefault(name, GaugeMetricFamily(name, help_text, labels=labels))
            family.add_metric([ident] + ([match.group(1)] if device_label else []), value)
            break
    return list(made.values())


class RrdCollector:
    def __init__(self, store):
        self.store = store

    def collect(self):
        return families(tpool.execute(newest_values, self.store))

    def describe(self):
        return []  # no description: registering must not collect (it would read every file)
