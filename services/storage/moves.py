"""A root disk's move to another host, for a live migration (the instances service's migrate saga).

The hosts share no storage. Before the move the destination gets its disk (`prepare_move`), as
its pool's kind has it (hostagent/pools):
- a dir pool: the image (copied into its pool if it has no copy yet) and an empty copy-on-write
  top layer over it, of the root disk's name and size; libvirt then copies the source's top layer
  into it while the guest runs (NON_SHARED_INC);
- a logical pool: an empty raw LV of the root disk's size; libvirt copies the whole disk into it
  (NON_SHARED_DISK: an LVM snapshot has no backing chain QEMU could share).
After the move the volume's row names the destination (and the disk's name there: the suffix
follows the destination pool's format) and the source's disk goes (`complete_move`); after a failed
move the destination's disk goes (`abort_move`).

Every step is idempotent, and the row tells which copy is the disk: a move completed once and
asked again deletes nothing the row names. If the instance's row was deleted meanwhile (a delete
raced the migration), complete_move removes both copies: no record owns either.
"""
import os

from sqlalchemy import update

from common.errors import Conflict, NotFound
from services.storage import disks
from services.storage.models import Volume


def _root(session, instance_id):
    return disks.root_volume_of(session, instance_id)


def prepare_move(session, hosts, instance_id, destination, data_dir, facts):
    """The destination's disk (an empty top layer over its copy of the image, or an empty raw LV):
    {path, capacity_bytes}."""
    volume = _root(session, instance_id)
    if volume is None or volume.state != "available":
        raise NotFound(f"instance {instance_id} has no root disk to move", {"instance_id": ["no root disk"]})
    if volume.host == destination:
        return {"path": volume.path, "capacity_bytes": volume.capacity_bytes}  # moved already
    image = disks.find_image(session, volume.image_id)
    capacity_bytes = volume.capacity_bytes
    session.commit()  # nothing open while we wait on the host
    agent = hosts(destination)
    disk_format = disks.learn_pool(agent, destination, facts)
    name = disks.root_volume_name(instance_id, disk_format)
    if disk_format == "qcow2":
        made = disks.make_volume(agent, destination, image, name, capacity_bytes, data_dir, facts)
    else:  # a whole copy comes: a plain volume of the disk's size, no image needed
        made = agent.create_volume({"name": name, "capacity_bytes": capacity_bytes, "format": disk_format})
    return {"path": made["path"], "capacity_bytes": made["capacity_bytes"]}


def _name_on(hosts, host, instance_id, facts):
    return disks.root_volume_name(instance_id, disks.host_disk_format(hosts, host, facts))


def complete_move(session, hosts, instance_id, source, destination, path, facts):
    """The row names the destination's copy; the source's goes. Returns True when the row was
    moved now or before, False when there is no row (both copies removed)."""
    volume = _root(session, instance_id)
    if volume is None:
        for host in (source, destination):
            hosts(host).delete_volume({"name": _name_on(hosts, host, instance_id, facts)})
        return False
    source_name = volume.name
    if volume.host == source:
        # The disk's name there is its path's last part (a file's name, an LV's).
        moved = session.execute(update(Volume).where(Volume.id == volume.id, Volume.host == source)
                                .values(host=destination, path=path, name=os.path.basename(path))).rowcount
        session.commit()
        if not moved:
            raise Conflict(f"the root disk of {instance_id} changed meanwhile", {"instance_id": ["changed"]})
    elif volume.host != destination:
        raise Conflict(f"the root disk of {instance_id} is on {volume.host}, not {source} or {destination}",
                       {"host": ["not where the disk is"]})
    else:
        source_name = _name_on(hosts, source, instance_id, facts)  # moved before: the source's own name
    hosts(source).delete_volume({"name": source_name})
    return True


def abort_move(session, hosts, instance_id, destination, facts):
    """After a failed move: the destination's copy goes, unless the row says it is the disk now."""
    volume = _root(session, instance_id)
    if volume is not None and volume.host == destination:
        return False
    hosts(destination).delete_volume({"name": _name_on(hosts, destination, instance_id, facts)})
    return True
