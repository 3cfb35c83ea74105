"""Per-domain samples for the `domain_stats` event.

The bulk call (`getAllDomainStats`) is what a QEMU host answers with one round trip. Drivers that
leave groups out (the test driver returns only `state`) are filled in per field from
`dom.info()`, `blockStats` and `interfaceStats`. Run in a native thread by HypervisorConnection.run.
"""
import xml.etree.ElementTree as ET

import libvirt

from hostagent.domains import is_managed, state_name

STATS_GROUPS = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
                | libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_VCPU
                | libvirt.VIR_DOMAIN_STATS_BLOCK | libvirt.VIR_DOMAIN_STATS_INTERFACE)


def _sum_indexed(record, group, field):
    """Sum `<group>.<i>.<field>` over `<group>.count` devices; None if the group is missing."""
    count = record.get(f"{group}.count")
    if count is None:
        return None
    values = [record.get(f"{group}.{i}.{field}") for i in range(count)]
    values = [v for v in values if v is not None]
    return sum(values) if values else None


def from_bulk(record):
    """What the bulk record tells; None for every field it leaves out."""
    return {
        "state": state_name(record["state.state"]) if "state.state" in record else None,
        "vcpus": record.get("vcpu.current"),
        "cpu_time_ns": record.get("cpu.time"),
        "memory_kib": record.get("balloon.current"),
        "disk_read_bytes": _sum_indexed(record, "block", "rd.bytes"),
        "disk_write_bytes": _sum_indexed(record, "block", "wr.bytes"),
        "net_rx_bytes": _sum_indexed(record, "net", "rx.bytes"),
        "net_tx_bytes": _sum_indexed(record, "net", "tx.bytes"),
    }


def _devices(domain):
    """Disk target names and interface names (target dev, or the MAC when there is none)."""
    devices = ET.fromstring(domain.XMLDesc(0)).find("devices")
    disks = [t.get("dev") for t in devices.findall("disk/target") if t.get("dev")]
    nics = []
    for interface in devices.findall("interface"):
        target, mac = interface.find("target"), interface.find("mac")
        name = target.get("dev") if target is not None else (mac.get("address") if mac is not None else None)
        if name:
            nics.append(name)
    return disks, nics


def _default(sample, field, value):
    if sample[field] is None:
        sample[field] = value


def fill_in(domain, sample):
    """Fill the fields the bulk record lacked from the per-domain calls."""
    if None in (sample["state"], sample["vcpus"], sample["cpu_time_ns"], sample["memory_kib"]):
        state, _max_kib, mem_kib, vcpus, cpu_time_ns = domain.info()
        _default(sample, "state", state_name(state))
        _default(sample, "vcpus", vcpus)
        _default(sample, "cpu_time_ns", cpu_time_ns)
        _default(sample, "memory_kib", mem_kib)
    io_fields = ("disk_read_bytes", "disk_write_bytes", "net_rx_bytes", "net_tx_bytes")
    if all(sample[f] is not None for f in io_fields) or not domain.isActive():
        return sample  # a stopped domain has no I/O counters: they stay null
    disks, nics = _devices(domain)
    if sample["disk_read_bytes"] is None or sample["disk_write_bytes"] is None:
        block = [domain.blockStats(dev) for dev in disks]  # (rd_req, rd_bytes, wr_req, wr_bytes, errs)
        _default(sample, "disk_read_bytes", sum(b[1] for b in block))
        _default(sample, "disk_write_bytes", sum(b[3] for b in block))
    if sample["net_rx_bytes"] is None or sample["net_tx_bytes"] is None:
        net = [domain.interfaceStats(dev) for dev in nics]  # (rx_bytes, rx_pkts, rx_errs, rx_drop, tx_bytes, ...)
        _default(sample, "net_rx_bytes", sum(n[0] for n in net))
        _default(sample, "net_tx_bytes", sum(n[4] for n in net))
    return sample


def collect(conn):
    """One sample per labcloud domain: [{instance_id, state, vcpus, cpu_time_ns, memory_kib,
    disk_read_bytes, disk_write_bytes, net_rx_bytes, net_tx_bytes}]."""
    samples = []
    for domain, record in conn.getAllDomainStats(STATS_GROUPS, 0):
        try:
            if not is_managed(domain):
                continue
            sample = fill_in(domain, from_bulk(record))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                continue  # undefined between the bulk call and now
            raise
        samples.append({"instance_id": domain.UUIDString(), **sample})
    return samples
