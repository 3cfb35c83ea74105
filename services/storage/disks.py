"""Images and root disks. A root disk is a copy-on-write volume in the host's pool over the image
volume the host keeps once per image: a qcow2 over the image's file on a `dir` pool, an LVM
snapshot of the image's raw LV on a `logical` pool (hostagent/pools). Volume names follow the
pool's disk format: `root-<id>.qcow2` (dir), `root-<id>` (logical, an LV).

Order matters for crashes: the volume row is committed ('creating') before any host call, so a
disk the host made is always findable by delete_root_disk; no write transaction spans an RPC.
"""
import os

from nameko.exceptions import UnknownService
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from common.errors import Conflict, HostOperationFailed, NotFound
from services.storage.models import Image, Volume

GIB = 1 << 30


DEFAULT_DISK_FORMAT = "qcow2"  # a host agent that does not report its pool's format has a dir pool


def volume_file_name(stem, disk_format):
    """A pool volume's name: a dir pool's qcow2 files keep the suffix, a logical pool's LVs have none."""
    return f"{stem}.qcow2" if disk_format == "qcow2" else stem


def format_of(name):
    """The disk format of a volume storage named (volume_file_name): from its name or path."""
    return "qcow2" if name.endswith(".qcow2") else "raw"


def root_volume_name(instance_id, disk_format=DEFAULT_DISK_FORMAT):
    return volume_file_name(f"root-{instance_id}", disk_format)


def describe_image(image):
    return {"id": image.id, "name": image.name, "version": image.version, "description": image.description,
            "format": image.format, "size_bytes": image.size_bytes, "file_bytes": image.file_bytes,
            "checksum": image.checksum, "min_disk_gib": image.min_disk_gib,
            "min_memory_mib": image.min_memory_mib, "visibility": image.visibility, "project": image.project_id,
            "user_id": image.user_id, "state": image.state, "reason": image.reason,
            "boot": "kernel" if image.kernel_path else "disk", "created_at": image.created_at}


def boot_files(image, data_dir):
    """Kernel, initramfs (absolute paths) and command line for direct kernel boot, or None for an
    image that boots from its disk. Internal: users never see server paths."""
    if not image.kernel_path:
        return None
    return {"kernel": resolve(image.kernel_path, data_dir), "initrd": resolve(image.initrd_path, data_dir),
            "cmdline": image.cmdline or ""}


def describe_volume(volume):
    return {column: getattr(volume, column) for column in (
        "id", "name", "kind", "host", "pool", "path", "capacity_bytes", "image_id", "instance_id",
        "state", "created_at")}


def list_images(session):
    """Every bootable image (internal callers; users get image_access.visible_images)."""
    return [describe_image(i) for i in session.scalars(select(Image).where(Image.state == "active")
                                                       .order_by(Image.id))]


def find_image(session, image_id):
    """The image to make disks over: only an active one (not uploading, failed or deleted)."""
    image = session.get(Image, image_id)
    if image is None or image.state != "active":
        raise NotFound(f"no image {image_id}", {"image_id": ["unknown image"]})
    return image


def list_volumes(session, host=None):
    query = select(Volume).order_by(Volume.id)
    if host is not None:
        query = query.where(Volume.host == host)
    return [describe_volume(v) for v in session.scalars(query)]


def root_volume_of(session, instance_id):
    return session.scalars(
        select(Volume).where(Volume.instance_id == instance_id, Volume.kind == "root")).first()


def resolve(path, data_dir):
    if path is None or os.path.isabs(path):
        return path
    return os.path.join(os.path.abspath(data_dir), path)


def image_source(image, data_dir):
    return resolve(image.source_path, data_dir)


def _record_root_volume(session, request, capacity_bytes, disk_format):
    """Insert the 'creating' row, or return the one a previous (or concurrent) call made."""
    existing = root_volume_of(session, request["instance_id"])
    if existing is not None:
        return existing
    volume = Volume(name=root_volume_name(request["instance_id"], disk_format), kind="root", host=request["host"],
                    capacity_bytes=capacity_bytes, image_id=request["image_id"],
                    instance_id=request["instance_id"], state="creating")
    session.add(volume)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # a redelivered request won the race: use its row
        return root_volume_of(session, request["instance_id"])
    return volume


class HostFacts:
    """What storage learnt of each host that does not change while it runs: its pool's name and
    disk format, and where it keeps each image. Saves two host round trips on every root disk
    after the first; a copy lost behind our back is noticed when creating over it fails, and
    asked for again."""

    def __init__(self):
        self.pools, self.images, self.formats = {}, {}, {}

    def forget_image(self, host, image_id):
        self.images.pop((host, image_id), None)


def learn_pool(agent, host, facts):
    """The host's pool's disk format (qcow2: dir, raw: logical), its pool name kept in
    facts.pools; asked of the host (get_host_info) once."""
    if host not in facts.pools or host not in facts.formats:
        info = agent.get_host_info()
        facts.pools[host] = info["pool"]
        facts.formats[host] = info.get("disk_format") or DEFAULT_DISK_FORMAT
    return facts.formats[host]


def host_disk_format(hosts, host, facts):
    """learn_pool for a host by name; a host no agent serves fails as HostOperationFailed."""
    try:
        return learn_pool(hosts(host), host, facts)
    except UnknownService:
        raise HostOperationFailed(f"host {host}: no host agent is serving it") from None


def create_root_disk(session, hosts, request, data_dir, facts=None):
    """The instance's root disk on `request['host']`; asking again returns the same volume."""
    facts = facts or HostFacts()
    image = find_image(session, request["image_id"])
    capacity_bytes = max(request["size_gib"], image.min_disk_gib) * GIB
    session.commit()  # nothing open while we wait on the host
    disk_format = host_disk_format(hosts, request["host"], facts)  # the name follows it
    volume = _record_root_volume(session, request, capacity_bytes, disk_format)
    if volume.state == "available":
        return describe_volume(volume)
    if volume.state == "deleting" or volume.host != request["host"]:
        raise Conflict(f"instance {request['instance_id']} has a root disk {volume.state} on {volume.host}",
                       {"instance_id": ["root disk exists"]})
    session.commit()  # nothing open while we wait on the host

    host = volume.host
    try:
        agent = hosts(host)  # every call bounded by HOST_RPC_TIMEOUT (common.hostrpc)
        made = make_volume(agent, host, image, volume.name, capacity_bytes, data_dir, facts)
    except (HostOperationFailed, UnknownService) as exc:
        _undo_create(session, hosts, volume)
        if isinstance(exc, UnknownService):
            raise HostOperationFailed(f"host {host}: no host agent is serving it") from None
        raise
    # Compare-and-set: a delete_root_disk that came while the host was making the disk has removed
    # (or is removing) the row; the disk it could not see yet goes too.
    made_available = session.execute(
        update(Volume).where(Volume.id == volume.id, Volume.state == "creating")
        .values(pool=facts.pools[host], path=made["path"], capacity_bytes=made["capacity_bytes"],
                state="available")).rowcount == 1
    session.commit()
    if not made_available:
        session.expunge(volume)  # its row is gone
        hosts(host).delete_volume({"name": volume.name})
        raise Conflict(f"the root disk of {request['instance_id']} was deleted while it was made",
                       {"instance_id": ["deleted meanwhile"]})
    session.refresh(volume)
    return describe_volume(volume)


def make_volume(agent, host, image, name, capacity_bytes, data_dir, facts):
    """The copy-on-write volume `name` over the host's copy of the image (copied there first if
    needed), in the host pool's format; an existing one of that name is returned as it is."""
    disk_format = learn_pool(agent, host, facts)
    for attempt in range(2):
        backing = facts.images.get((host, image.id))
        if backing is None:
            backing = agent.ensure_image({
                "image_id": image.id, "source_path": image_source(image, data_dir),
                "format": image.format, "capacity_bytes": image.size_bytes})["path"]
        try:
            # backing_format: the image as uploaded (a dir pool keeps it so; a logical pool holds it
            # raw, whatever this says: its agent names the format itself).
            made = agent.create_volume({"name": name, "capacity_bytes": capacity_bytes,
                                        "format": disk_format, "backing_path": backing,
                                        "backing_format": image.format})
        except HostOperationFailed:
            if attempt or (host, image.id) not in facts.images:
                raise
            facts.forget_image(host, image.id)  # the host may have lost its copy: ensure it again
            continue
        facts.images[(host, image.id)] = backing
        return made


def _undo_create(session, hosts, volume):
    """Remove what a failed create may have made. If the host cannot confirm, keep the row as
    'deleting' so delete_root_disk (the saga's undo step) can finish the job later."""
    try:
        hosts(volume.host).delete_volume({"name": volume.name})
    except UnknownService:
        pass  # no agent has ever served this host: nothing was made there
    except HostOperationFailed:
        volume.state = "deleting"
        session.commit()
        return
    session.delete(volume)
    session.commit()


def root_disk_growth(session, instance_id):
    """{growable, reason}: whether the instance's root disk can grow (a resize asks first)."""
    volume = root_volume_of(session, instance_id)
    if volume is None:
        return {"growable": False, "reason": "it has no root disk"}
    if format_of(volume.name) == "raw":
        return {"growable": False, "reason": "it is an LVM snapshot of its image (a logical pool), which keeps "
                                             "the image's size"}
    return {"growable": True, "reason": None}


def grow_root_disk(session, hosts, instance_id, size_gib):
    """Grow the instance's root disk on its host to `size_gib` (the guest must be stopped); a disk
    already that large changes nothing, so a redelivered request is harmless."""
    volume = root_volume_of(session, instance_id)
    if volume is None or volume.state != "available":
        raise NotFound(f"instance {instance_id} has no root disk to grow")
    wanted = size_gib << 30
    if volume.capacity_bytes < wanted and format_of(volume.name) == "raw":
        raise Conflict(f"the root disk of {instance_id} is an LVM snapshot of its image (a logical pool): it keeps "
                       "the image's size", {"size_gib": ["a root disk on a logical pool cannot grow"]})
    if volume.capacity_bytes < wanted:
        grown = hosts(volume.host).grow_volume({"name": volume.name, "capacity_bytes": wanted})
        volume.capacity_bytes = grown["capacity_bytes"]
        session.commit()
    return volume


def delete_root_disk(session, hosts, instance_id):
    """Delete the instance's root disk on its host, then its row. False when there is none."""
    volume = root_volume_of(session, instance_id)
    if volume is None:
        return False
    volume.state = "deleting"
    session.commit()
    try:
        hosts(volume.host).delete_volume({"name": volume.name})
    except UnknownService:
        pass  # no agent has ever served this host: nothing to delete there
    # A plain DELETE: two replicas deleting one disk at once (a redelivered delete) both get here,
    # and the second's finds the row gone, which is the outcome it wanted.
    session.execute(delete(Volume).where(Volume.id == volume.id))
    session.commit()
    return True


def delete_orphan_volume(session, hosts, host, name):
    """A root disk on `host` that no live instance owns (reconcile found it): delete it on the host
    and forget its row if there is one. False when the host had no such volume."""
    row = session.scalars(select(Volume).where(Volume.host == host, Volume.name == name)).first()
    if row is not None:
        row.state = "deleting"
        session.commit()
    try:
        deleted = hosts(host).delete_volume({"name": name})["deleted"]
    except UnknownService:
        deleted = False  # no agent has ever served this host: nothing to delete there
    if row is not None:
        session.delete(row)
        session.commit()
    return deleted
