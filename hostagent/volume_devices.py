"""Data volumes as disk devices of a domain: hot-plug and hot-unplug through libvirt. Functions
take a raw libvirt connection and are run in a native thread by HypervisorConnection.run (libvirt
and plain Python only).

Both calls are idempotent (RPC is at-least-once) and work on each view of the domain on its own:
the live one (a running guest: `VIR_DOMAIN_AFFECT_LIVE`) and the persistent definition
(`VIR_DOMAIN_AFFECT_CONFIG`: the next start has it). A view that already has the disk (attach) or
no longer has it (detach) is left alone, so a repeat, or a retry after a half-done call, finishes
the job without an error.

The test driver (test:///default) has no attachDeviceFlags: there the persistent definition is
rewritten with the disk added or removed (defineXML), which is what a stopped domain's CONFIG
attach does on a real host.
"""
import time
import xml.etree.ElementTree as ET

import libvirt

from common.errors import HostOperationFailed
from hostagent import domains
from hostagent.domain_xml import disk_element

LIVE, CONFIG = libvirt.VIR_DOMAIN_AFFECT_LIVE, libvirt.VIR_DOMAIN_AFFECT_CONFIG
DETACH_WAIT_S = 20  # the guest's ACPI hot-unplug takes 0.2-0.3 s under TCG (HYPERVISOR.md)


def disk_xml(path, device, fmt="qcow2", serial=None):
    """The <disk> element of a data volume: a virtio disk on `device` (vdb, vdc, ...); a block
    device for a logical pool's LV (domain_xml.disk_element)."""
    disk = disk_element(path, device, fmt)
    if serial:
        ET.SubElement(disk, "serial").text = serial[:20]  # QEMU keeps at most 20 characters
    return ET.tostring(disk, encoding="unicode")


def disks_of(xml):
    """{target device: source path} of every disk in a domain XML (a file's, or a block device's)."""
    found = {}
    for disk in ET.fromstring(xml).findall("devices/disk"):
        target, source = disk.find("target"), disk.find("source")
        if target is not None:
            found[target.get("dev")] = (source.get("file") or source.get("dev")) if source is not None else None
    return found


def _views(domain, is_test_driver=False):
    """[(flag, xml)] of the views a change must reach: the live one while the domain runs (not
    on the test driver, which cannot change it), and the persistent definition."""
    views = []
    if domain.isActive() and not is_test_driver:
        views.append((LIVE, domain.XMLDesc(0)))
    views.append((CONFIG, domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))
    return views


def _check_free(xml, path, device):
    """True if the view has the disk already; raises if the device holds another file or the
    file is on another device (a stale attachment storage does not know of)."""
    disks = disks_of(xml)
    if disks.get(device) == path:
        return True
    if device in disks:
        raise HostOperationFailed(f"device {device} holds {disks[device]}, not {path}")
    if path in disks.values():
        other = next(dev for dev, source in disks.items() if source == path)
        raise HostOperationFailed(f"{path} is attached as {other}, not {device}")
    return False


def attach(conn, instance_id, path, device, fmt="qcow2", serial=None, is_test_driver=False):
    """The volume at `path` as `device` of the instance's domain, live (if it runs) and in its
    definition. Returns {"device", "live"}: live is true when the running guest has it now."""
    domain = domains.require_domain(conn, instance_id)
    element = disk_xml(path, device, fmt, serial)
    live = False
    for flag, xml in _views(domain, is_test_driver):
        present = _check_free(xml, path, device)
        if flag == LIVE:
            live = True
        if present:
            continue
        if is_test_driver:
            _redefine(conn, xml, add=ET.fromstring(element))
        else:
            domain.attachDeviceFlags(element, flag)
    return {"device": device, "live": live}


def detach(conn, instance_id, device, path=None, is_test_driver=False, wait_s=DETACH_WAIT_S):
    """Remove `device` (holding `path`, when given) from the domain, live and in its definition.
    Returns {"device", "detached"}: detached is false when no view had it (asked again). A domain
    that is gone holds nothing: detached false. Raises when the guest did not let the disk go
    within `wait_s` (the definition is changed by then: a retry waits again for the live one)."""
    domain = domains.find_domain(conn, instance_id)
    if domain is None:
        return {"device": device, "detached": False}
    detached = False
    for flag, xml in reversed(_views(domain, is_test_driver)):  # the definition first: a restart never brings it back
        disks = disks_of(xml)
        if device not in disks or (path is not None and disks[device] != path):
            continue
        detached = True
        element = _disk_element(xml, device)
        if is_test_driver:
            _redefine(conn, xml, remove=device)
            continue
        try:
            domain.detachDeviceFlags(element, flag)
        except libvirt.libvirtError as exc:
            # A detach already under way in the guest (a retry) is not an error: wait for it below.
            if flag != LIVE or "already in the process of unplug" not in str(exc):
                raise
        if flag == LIVE:
            _wait_gone(domain, device, wait_s)
    return {"device": device, "detached": detached}


def _disk_element(xml, device):
    for disk in ET.fromstring(xml).findall("devices/disk"):
        target = disk.find("target")
        if target is not None and target.get("dev") == device:
            return ET.tostring(disk, encoding="unicode")
    raise HostOperationFailed(f"no disk {device}")


def _wait_gone(domain, device, wait_s):
    deadline = time.monotonic() + wait_s
    while True:
        if not domain.isActive() or device not in disks_of(domain.XMLDesc(0)):
            return
        if time.monotonic() > deadline:
            raise HostOperationFailed(f"the guest did not release {device} within {wait_s} s")
        time.sleep(0.05)


def _redefine(conn, xml, add=None, remove=None):
    """The test driver: the persistent definition again, with a disk added or removed."""
    root = ET.fromstring(xml)
    devices = root.find("devices")
    if add is not None:
        devices.append(add)
    if remove is not None:
        for disk in devices.findall("disk"):
            target = disk.find("target")
            if target is not None and target.get("dev") == remove:
                devices.remove(disk)
    conn.defineXML(ET.tostring(root, encoding="unicode"))


def list_disks(conn, instance_id):
    """{device: path} of the domain's definition (none for a domain that is gone)."""
    domain = domains.find_domain(conn, instance_id)
    if domain is None:
        return {}
    return disks_of(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
