"""A root disk's move to another host, for a live migration (the instances service's migrate saga).

The hosts share no storage. Before the move the destination gets the image (copied into its pool
if it has no copy yet) and an empty copy-on-write top layer over it, of the root disk's name and
size (`prepare_move`); libvirt then copies the source's top layer into it while the guest runs.
After the move the volume's row names the destination and the source's top layer goes
(`complete_move`); after a failed move the destination's top layer goes (`abort_move`).

Every step is idempotent, and the row tells which copy is the disk: a move completed once and
asked again deletes nothing the row names. If the instance's row was deleted meanwhile (a delete
raced the migration), complete_move removes both copies: no record owns either.
"""
from sqlalchemy import update

from common.errors import Conflict, NotFound
from services.storage import disks
from services.storage.models import Volume


def _root(session, instance_id):
    return disks.root_volume_of(session, instance_id)


def prepare_move(session, hosts, instance_id, destination, data_dir, facts):
    """The destination's empty top layer (its image copied there first): {path, capacity_bytes}."""
    volume = _root(session, instance_id)
    if volume is None or volume.state != "available":
        raise NotFound(f"instance {instance_id} has no root disk to move", {"instance_id": ["no root disk"]})
    if volume.host == destination:
        return {"path": volume.path, "capacity_bytes": volume.capacity_bytes}  # moved already
    image = disks.find_image(session, volume.image_id)
    session.commit()  # nothing open while we wait on the host
    made = disks.make_volume(hosts(destination), destination, image, volume.name, volume.capacity_bytes,
                             data_dir, facts)
    if destination not in facts.pools:
        facts.pools[destination] = hosts(destination).get_host_info()["pool"]
    return {"path": made["path"], "capacity_bytes": made["capacity_bytes"]}


def complete_move(session, hosts, instance_id, source, destination, path):
    """The row names the destination's copy; the source's goes. Returns True when the row was
    moved now or before, False when there is no row (both copies removed)."""
    volume = _root(session, instance_id)
    if volume is None:
        for host in (source, destination):
            hosts(host).delete_volume({"name": disks.root_volume_name(instance_id)})
        return False
    if volume.host == source:
        moved = session.execute(update(Volume).where(Volume.id == volume.id, Volume.host == source)
                                .values(host=destination, path=path)).rowcount
        session.commit()
        if not moved:
            raise Conflict(f"the root disk of {instance_id} changed meanwhile", {"instance_id": ["changed"]})
    elif volume.host != destination:
        raise Conflict(f"the root disk of {instance_id} is on {volume.host}, not {source} or {destination}",
                       {"host": ["not where the disk is"]})
    hosts(source).delete_volume({"name": volume.name})
    return True


def abort_move(session, hosts, instance_id, destination):
    """After a failed move: the destination's copy goes, unless the row says it is the disk now."""
    volume = _root(session, instance_id)
    if volume is not None and volume.host == destination:
        return False
    hosts(destination).delete_volume({"name": disks.root_volume_name(instance_id)})
    return True
