"""A domain's resource shares on the hypervisor (services/instances/shares.py says what they mean).

- The definition (what the next start uses): the persistent XML's <vcpu>, <memory> (the maximum),
  <currentMemory>, <cputune> (shares, global period and quota), and the bandwidth in our metadata
  element, rewritten with defineXML (a resize changes the size the same way). One path for every driver (the test driver has no scheduler parameters).
- The running guest: setSchedulerParametersFlags(LIVE) writes the cgroup's cpu.shares and
  cpu.cfs_quota_us; setMemoryFlags(LIVE) sets the balloon target, which the guest follows within
  about half a second. Bandwidth is tc on the guest's tap (hostagent/bandwidth.py), applied by the
  agent after this (it needs the host's network namespace).
Functions take a libvirt connection and run in a native thread (hypervisor.py).
"""
import xml.etree.ElementTree as ET

import libvirt

from hostagent import domains
from hostagent.domain_xml import CPU_PERIOD_US, SHARES_PER_WEIGHT, cpu_shares, cputune_element, global_quota_us

MIB = 1024


def apply(conn, request, live_cpu):
    """Make the domain's definition and, when it runs, the live guest carry `request`'s shares.
    `live_cpu`: the hypervisor has a CPU scheduler to set (not the test driver). Returns the
    domain's tap device when it runs (for the bandwidth), else None."""
    domain = domains.require_domain(conn, request["instance_id"])
    _define_with(conn, domain, request)
    if not domain.isActive():
        return None
    # The balloon target, within what the running guest was started with.
    domain.setMemoryFlags(min(request["memory_mib"] * MIB, domain.maxMemory()), libvirt.VIR_DOMAIN_AFFECT_LIVE)
    if live_cpu:
        quota = global_quota_us(request["cpu_cap"])
        domain.setSchedulerParametersFlags({
            "cpu_shares": cpu_shares(request["cpu_weight"]),
            "global_period": CPU_PERIOD_US,
            "global_quota": quota if quota is not None else -1,   # -1: no quota (cgroup v1)
        }, libvirt.VIR_DOMAIN_AFFECT_LIVE)
    return tap_device(domain)


def _define_with(conn, domain, request):
    root = ET.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    old = root.find("cputune")
    position = list(root).index(old) if old is not None else list(root).index(root.find("vcpu")) + 1
    if old is not None:
        root.remove(old)
    cputune = cputune_element(request["cpu_weight"], request["cpu_cap"])
    if old is not None:  # keep what else it holds (vcpupin, emulatorpin)
        for child in old:
            if child.tag not in ("shares", "period", "quota", "global_period", "global_quota"):
                cputune.append(child)
    root.insert(position, cputune)
    # The size too (a resize): the next start has it; a running guest keeps its own until then.
    root.find("vcpu").text = str(request["vcpus"])
    maximum = root.find("memory")
    maximum.text, maximum.attrib = str(request["max_memory_mib"] * MIB), {"unit": "KiB"}
    current = root.find("currentMemory")
    current.text, current.attrib = str(request["memory_mib"] * MIB), {"unit": "KiB"}
    conn.defineXML(ET.tostring(root, encoding="unicode"))
    domains.set_instance_metadata(domain, bandwidth_in_kib=request["bandwidth_in_kib"],
                                  bandwidth_out_kib=request["bandwidth_out_kib"])


def tap_device(domain):
    """The running guest's tap (libvirt names it vnetN), or None."""
    if not domain.isActive():
        return None
    target = ET.fromstring(domain.XMLDesc(0)).find("devices/interface/target")
    return target.get("dev") if target is not None else None


def read(conn, instance_id, live_cpu):
    """What the domain has now: live values when it runs, else its definition's."""
    domain = domains.require_domain(conn, instance_id)
    active = bool(domain.isActive())
    root = ET.fromstring(domain.XMLDesc(0 if active else libvirt.VIR_DOMAIN_XML_INACTIVE))
    metadata = domains.instance_metadata(domain) or {}
    weight, cap = _cpu_from_xml(root)
    if active and live_cpu:
        params = domain.schedulerParametersFlags(libvirt.VIR_DOMAIN_AFFECT_LIVE)
        weight = params["cpu_shares"] // SHARES_PER_WEIGHT
        quota = params.get("global_quota", -1)
        cap = 0 if quota <= 0 else quota * 100 // params["global_period"]
    elif not live_cpu:
        weight = cap = None
    max_kib, current_kib = domain.maxMemory(), domain.info()[2]
    if not active:
        current_kib = _kib(root.find("currentMemory"))
    return {"instance_id": instance_id, "active": active, "cpu_weight": weight, "cpu_cap": cap,
            "memory_mib": current_kib // MIB, "max_memory_mib": max_kib // MIB,
            "bandwidth_in_kib": int(metadata.get("bandwidth_in_kib") or 0),
            "bandwidth_out_kib": int(metadata.get("bandwidth_out_kib") or 0)}


def _cpu_from_xml(root):
    shares = root.findtext("cputune/shares")
    quota = root.findtext("cputune/global_quota")
    period = root.findtext("cputune/global_period") or CPU_PERIOD_US
    weight = int(shares) // SHARES_PER_WEIGHT if shares else None
    cap = int(quota) * 100 // int(period) if quota and int(quota) > 0 else 0
    return weight, cap


def _kib(element):
    units = {"KiB": 1, "k": 1, "MiB": 1024, "M": 1024, "GiB": 1024 * 1024, "G": 1024 * 1024}
    return int(element.text) * units.get(element.get("unit", "KiB"), 1)


def bandwidth_of(conn, instance_id):
    """(inbound, outbound) KiB/s recorded for the domain, and its tap when it runs."""
    domain = domains.find_domain(conn, instance_id)
    if domain is None:
        return 0, 0, None
    metadata = domains.instance_metadata(domain) or {}
    return (int(metadata.get("bandwidth_in_kib") or 0), int(metadata.get("bandwidth_out_kib") or 0),
            tap_device(domain))
