"""Per-domain samples for the `domain_stats` event: per vCPU, balloon memory, per disk, per NIC,
plus the totals earlier consumers read (cpu_time_ns, disk_read_bytes, ...).

The bulk call (`getAllDomainStats`) is what a QEMU host answers with one round trip. Drivers that
leave groups out (the test driver returns only `state`) are filled in per field from
`dom.info()`, `vcpus()`, `memoryStats()`, `blockStats` and `interfaceStats`. Run in a native
thread by HypervisorConnection.run.
"""
import xml.etree.ElementTree as ET

import libvirt

from hostagent.domains import is_managed, state_name

STATS_GROUPS = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
                | libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_VCPU
                | libvirt.VIR_DOMAIN_STATS_BLOCK | libvirt.VIR_DOMAIN_STATS_INTERFACE)


def _indexed(record, group):
    """The `<group>.<i>.*` entries of a bulk record as one dict per device; None if absent."""
    count = record.get(f"{group}.count")
    if count is None:
        return None
    return [{key[len(f"{group}.{i}."):]: value for key, value in record.items()
             if key.startswith(f"{group}.{i}.")} for i in range(count)]


def _vcpu_times(record):
    current = record.get("vcpu.current")
    if current is None or "vcpu.0.time" not in record:
        return None
    return [record.get(f"vcpu.{i}.time") for i in range(current)]


def from_bulk(record):
    """What the bulk record tells; None for every field it leaves out."""
    blocks, nets = _indexed(record, "block"), _indexed(record, "net")
    disks = None if blocks is None else [
        {"device": b.get("name"), "read_bytes": b.get("rd.bytes"), "write_bytes": b.get("wr.bytes"),
         "read_reqs": b.get("rd.reqs"), "write_reqs": b.get("wr.reqs")} for b in blocks]
    nics = None if nets is None else [
        {"index": i, "rx_bytes": n.get("rx.bytes"), "tx_bytes": n.get("tx.bytes")}
        for i, n in enumerate(nets)]
    return {
        "state": state_name(record["state.state"]) if "state.state" in record else None,
        "vcpus": record.get("vcpu.current"),
        "cpu_time_ns": record.get("cpu.time"),
        "vcpu_time_ns": _vcpu_times(record),
        "memory_kib": record.get("balloon.current"),
        "memory_internal_free_kib": record.get("balloon.unused"),
        "disks": disks,
        "nics": nics,
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


def _disk_sample(domain, dev):
    rd_reqs, rd_bytes, wr_reqs, wr_bytes, _errs = domain.blockStats(dev)
    return {"device": dev, "read_bytes": rd_bytes, "write_bytes": wr_bytes,
            "read_reqs": rd_reqs, "write_reqs": wr_reqs}


def _nic_sample(domain, index, dev):
    stats = domain.interfaceStats(dev)  # (rx_bytes, rx_pkts, rx_errs, rx_drop, tx_bytes, ...)
    return {"index": index, "rx_bytes": stats[0], "tx_bytes": stats[4]}


def fill_in(domain, sample):
    """Fill the fields the bulk record lacked from the per-domain calls."""
    if None in (sample["state"], sample["vcpus"], sample["cpu_time_ns"], sample["memory_kib"]):
        state, _max_kib, mem_kib, vcpus, cpu_time_ns = domain.info()
        _default(sample, "state", state_name(state))
        _default(sample, "vcpus", vcpus)
        _default(sample, "cpu_time_ns", cpu_time_ns)
        _default(sample, "memory_kib", mem_kib)
    if not domain.isActive():
        # A stopped domain has no per-vCPU, balloon or I/O counters: they stay null / empty.
        sample.update(vcpu_time_ns=None, memory_internal_free_kib=None,
                      disks=sample["disks"] or [], nics=sample["nics"] or [])
        return with_totals(sample, io=False)
    if sample["vcpu_time_ns"] is None:
        sample["vcpu_time_ns"] = [cpu_time for _n, _state, cpu_time, _cpu in domain.vcpus()[0]]
    if sample["memory_internal_free_kib"] is None:
        sample["memory_internal_free_kib"] = domain.memoryStats().get("unused")
    if sample["disks"] is None or sample["nics"] is None:
        disks, nics = _devices(domain)
        _default(sample, "disks", [_disk_sample(domain, dev) for dev in disks])
        _default(sample, "nics", [_nic_sample(domain, i, dev) for i, dev in enumerate(nics)])
    return with_totals(sample, io=True)


def _total(items, field):
    values = [item[field] for item in items if item.get(field) is not None]
    return sum(values) if values else None


def with_totals(sample, io):
    """The per-device counters summed into the totals of the older fields."""
    for total, group, field in (("disk_read_bytes", "disks", "read_bytes"),
                                ("disk_write_bytes", "disks", "write_bytes"),
                                ("net_rx_bytes", "nics", "rx_bytes"),
                                ("net_tx_bytes", "nics", "tx_bytes")):
        sample[total] = _total(sample[group], field) if io else None
    return sample


def collect(conn):
    """One sample per labcloud domain: [{instance_id, state, vcpus, cpu_time_ns, memory_kib,
    disk_read_bytes, disk_write_bytes, net_rx_bytes, net_tx_bytes, vcpu_time_ns,
    memory_internal_free_kib, disks: [...], nics: [...]}] (hostagent/schemas.py DomainSampleSchema)."""
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
