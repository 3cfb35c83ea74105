"""Moving a running domain to another host, without shared storage (the source agent's side).

libvirt does the work (HYPERVISOR.md, "Live migration without shared storage"): the source agent
opens the destination's daemon (its MIGRATION_URI) and calls migrate3 with
- the destination's own definition: the root disk at the path storage made there (an empty
  copy-on-write top layer over the destination's copy of the image; NON_SHARED_INC copies the
  source's top layer into it while the guest runs), the console log in the destination's console
  directory, and the destination's SSH port in our metadata;
- the stream over the hosts' migration network: tcp://<destination MIGRATION_ADDRESS>, on which
  the destination's QEMU listens (each QEMU's loopback is inside its own host's namespace);
- LIVE | PERSIST_DEST | UNDEFINE_SOURCE: the guest keeps running, ends up defined on the
  destination and forgotten on the source. If anything fails, libvirt resumes the guest on the
  source and removes what it started on the destination.
A stopped guest moves the same way, started paused (cold migration: see migrate()).

The disk copy follows the destination's pool kind (hostagent/pools): onto a dir pool's qcow2 top
layer, NON_SHARED_INC copies only the source's top layer (both hosts hold the image); onto a
logical pool's raw LV (made empty there, of the disk's size, by storage), NON_SHARED_DISK copies
the whole disk, as an LV holds no backing chain to share.

The test driver cannot migrate (each agent's test:///default lives in its own process): there the
source answers with the definition it would have sent and the destination defines and starts it
(finish_incoming), and the source's destroy_domain removes its copy: the same records and calls
as on real hosts, without a guest that moves.

Functions here run in a native thread (HypervisorConnection.run): libvirt and plain Python only.
"""
import time
import xml.etree.ElementTree as ET

import libvirt

from common.errors import Conflict, HostOperationFailed
from hostagent import domains, volume_devices
from hostagent.domain_xml import METADATA_NS, set_disk_source

LIVE_FLAGS = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_NON_SHARED_INC | libvirt.VIR_MIGRATE_PERSIST_DEST
              | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
# A stopped guest, started paused for the move: it stays paused on the destination (and is powered
# off there at once).
COLD_FLAGS = (libvirt.VIR_MIGRATE_PAUSED | libvirt.VIR_MIGRATE_NON_SHARED_INC | libvirt.VIR_MIGRATE_PERSIST_DEST
              | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
ROOT_DISK = "vda"
# The destination disk's format -> what libvirt copies into it: the top layer (qcow2 over the
# destination's own copy of the image) or the whole disk (a raw LV).
DISK_COPY_FLAG = {"qcow2": libvirt.VIR_MIGRATE_NON_SHARED_INC, "raw": libvirt.VIR_MIGRATE_NON_SHARED_DISK}


def migrate_flags(cold, disk_format="qcow2"):
    base = COLD_FLAGS if cold else LIVE_FLAGS
    return (base & ~libvirt.VIR_MIGRATE_NON_SHARED_INC) | DISK_COPY_FLAG[disk_format]


def destination_xml(xml, disk_path, console_path, ssh_port, disk_format=None):
    """The domain's XML with the destination's root disk (of `disk_format`, when given: the
    destination pool's), console log and SSH port."""
    root = ET.fromstring(xml)
    for disk in root.findall("./devices/disk"):
        target = disk.find("target")
        if target is not None and target.get("dev") == ROOT_DISK:
            set_disk_source(disk, disk_path)
            if disk_format is not None:
                disk.find("driver").set("type", disk_format)
            if disk_format == "raw":  # a whole copy: the destination's disk has no backing chain
                for backing in disk.findall("backingStore"):
                    disk.remove(backing)
    if console_path:
        for device in root.findall("./devices/serial") + root.findall("./devices/console"):
            source = device.find("source")
            if source is not None and source.get("path"):
                source.set("path", console_path)
    ours = root.find(f"./metadata/{{{METADATA_NS}}}instance")
    if ours is not None:
        if ssh_port is None:
            ours.attrib.pop("ssh_port", None)
        else:
            ours.set("ssh_port", str(ssh_port))
    return ET.tostring(root, encoding="unicode")


def _present_on(conn, instance_id):
    """The running domain of `instance_id` on the connection's host, or None."""
    domain = domains.find_domain(conn, instance_id)
    if domain is not None and domain.isActive():
        return domain
    return None


def migrate(conn, instance_id, target, test_driver=False):
    """Move the domain to the host `target` describes ({uri, address, disk_path, console_path,
    ssh_port}). Returns {moved, running, downtime_ms, total_ms, xml}: `xml` (the definition for the
    destination) only on the test driver, where nothing moves here.

    A running guest moves live. A stopped one is started paused first (it runs no instruction, so
    its disk does not change), moved the same way (its top layer copied by libvirt) and powered off
    on the destination: it arrives stopped; after a failure it is powered off here again.

    Asking again after a move that succeeded (a redelivered request) finds the guest on the
    destination and not here, and changes nothing.

    A guest with data volumes attached does not move (Conflict naming `volumes`): a volume lives
    in this host's pool, and the destination would get a definition naming disks it does not have."""
    source = domains.find_domain(conn, instance_id)
    if source is not None:
        _refuse_data_volumes(source, instance_id)
    if test_driver:
        if source is None:
            return {"moved": False, "running": None, "downtime_ms": None, "total_ms": None, "xml": None}
        xml = destination_xml(source.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), target["disk_path"],
                              target.get("console_path"), target.get("ssh_port"), target.get("disk_format"))
        return {"moved": True, "running": bool(source.isActive()), "downtime_ms": 0, "total_ms": 0, "xml": xml}
    destination = libvirt.open(target["uri"])
    try:
        if source is None:
            arrived = domains.find_domain(destination, instance_id)
            if arrived is not None:
                return {"moved": True, "running": bool(arrived.isActive()), "downtime_ms": None,
                        "total_ms": None, "xml": None}
            raise Conflict(f"instance {instance_id} is on neither host", {"instance_id": ["not here"]})
        cold = not source.isActive()
        if cold:
            source.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        started = time.monotonic()
        try:
            moved = source.migrate3(destination, _params(source, target),
                                   migrate_flags(cold, target.get("disk_format") or "qcow2"))
        except libvirt.libvirtError as exc:
            if cold:
                _power_off(source)   # back to what it was
            raise HostOperationFailed(f"migration of {instance_id} failed: {exc.get_error_message()}") from None
        total_ms = round((time.monotonic() - started) * 1000)
        downtime_ms = None if cold else _downtime_ms(moved)
        if cold:
            _power_off(moved)
        return {"moved": True, "running": not cold, "total_ms": total_ms, "downtime_ms": downtime_ms, "xml": None}
    finally:
        destination.close()


def _refuse_data_volumes(source, instance_id):
    data = sorted(dev for dev in volume_devices.disks_of(source.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
                  if dev != ROOT_DISK)
    if data:
        raise Conflict(f"instance {instance_id} has data volumes attached ({', '.join(data)}): detach them "
                       "before migrating (a volume lives on one host's pool)", {"volumes": data})


def _params(source, target):
    running_xml = source.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE)
    defined_xml = source.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE | libvirt.VIR_DOMAIN_XML_INACTIVE)
    where = (target["disk_path"], target.get("console_path"), target.get("ssh_port"), target.get("disk_format"))
    params = {
        libvirt.VIR_MIGRATE_PARAM_DEST_XML: destination_xml(running_xml, *where),
        libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: destination_xml(defined_xml, *where),
        libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS: [ROOT_DISK],
    }
    if target.get("address"):   # the destination's address on the hosts' migration network
        params[libvirt.VIR_MIGRATE_PARAM_URI] = f"tcp://{target['address']}"
        params[libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS] = target["address"]
    return params


def _power_off(domain):
    try:
        domain.destroy()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in (libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_ERR_NO_DOMAIN):
            raise


def _downtime_ms(domain):
    """The guest's pause at the switch-over, as the destination's completed job recorded it (None
    when this libvirt keeps no such record)."""
    try:
        stats = domain.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    except libvirt.libvirtError:
        return None
    return stats.get("downtime")


def adopt(conn, instance_id, xml, start=True):
    """The destination's side. On the test driver: define the domain the source described (and
    start it if it ran there), unless it is here already. On a real driver migrate3 defined it (and
    it runs or not as it did): a missing domain is an error then (xml is None)."""
    domain = domains.find_domain(conn, instance_id)
    if domain is None:
        if xml is None:
            raise HostOperationFailed(f"instance {instance_id} did not arrive on this host")
        domain = conn.defineXML(xml)
        if start:
            domain.create()
    return domains.describe(domain)
