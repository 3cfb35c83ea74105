"""Data volumes (EC2 EBS's idea) and their snapshots: volumes in one host's pool (qcow2 files on a
`dir` pool, raw LVs on a `logical` one: hostagent/pools; the name's suffix says which), attached
to an instance on that host as a virtio disk (vdb, vdc, ...), hot-plugged when it runs.

Storage orchestrates: it owns the volume rows and asks the instances service for the instance
(`get_instance(actor, id)`: its host, state and project, and whether the actor may see it) and the
instance's host agent for the disk device (`attach_disk`, `detach_disk`). The instances service
only tells storage when an instance is gone (`release_instance_volumes`, a step of its delete).

States (`Volume.state`): creating -> available <-> in-use; available|error -> deleting -> (gone);
a failed create ends in `error` only when the host could not confirm the cleanup. While in-use,
`attach_state` says how far: attaching -> attached -> detaching.

Every step is a compare-and-set on the row committed before the host is asked (no write
transaction spans an RPC), and every host call is idempotent by name or device, so a repeated
request (RPC is at-least-once) finishes what an interrupted one began:
- create: the name is unique per project; the same name and size again returns that volume (a
  `creating` one is made now); the host's create is idempotent by the volume's pool name.
- attach: the same volume and instance again carries on from `attaching`; a failed host call
  detaches what may have been attached and puts the volume back `available`.
- detach: from `attached`, `attaching` or `detaching`; a failed host call leaves `detaching`
  (asked again, or reconcile, finishes it); a domain that is gone holds nothing.
- delete: `available` or `error` -> `deleting` -> the host's delete -> the row goes; a host that
  cannot confirm leaves `deleting`, finished by the next delete or by reconcile.
`reconcile` (a timer) finishes or undoes whatever has stayed in a transitional state longer than
the grace period (a worker that died mid-way).
"""
import datetime as dt
import logging
import re
import uuid

from nameko.exceptions import UnknownService
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from common import policy, quota
from common.clock import utcnow
from common.errors import Conflict, HostOperationFailed, InvalidInput, NotFound
from common.visibility import visible_rows
from services.storage import disks, image_access
from services.storage.models import QuotaLock, Snapshot, Volume

log = logging.getLogger(__name__)
GIB = 1 << 30
DEVICES = tuple(f"vd{letter}" for letter in "bcdefghijklmnopqrstuvwxyz")  # vda is the root disk
ATTACHABLE_INSTANCE_STATES = ("running", "stopped")
RECONCILE_GRACE = dt.timedelta(minutes=10)
COUNTED = ("volumes", "volume_gib")


def data_volume_name(disk_format=disks.DEFAULT_DISK_FORMAT):
    return disks.volume_file_name(f"data-{uuid.uuid4()}", disk_format)


def snapshot_volume_name(disk_format=disks.DEFAULT_DISK_FORMAT):
    return disks.volume_file_name(f"snap-{uuid.uuid4()}", disk_format)


def target(row):
    return {"user_id": row.user_id, "project_id": row.project_id}


def describe(volume):
    return {"id": volume.id, "name": volume.display_name, "size_gib": volume.size_gib, "state": volume.state,
            "host": volume.host, "project": volume.project_id, "user_id": volume.user_id,
            "instance": volume.instance_id, "device": volume.device, "attach_state": volume.attach_state,
            "attached_at": volume.attached_at, "snapshot": volume.source_snapshot_id, "image": volume.image_id,
            "reason": volume.reason, "created_at": volume.created_at, "updated_at": volume.updated_at}


def describe_snapshot(snapshot):
    return {"id": snapshot.id, "name": snapshot.name, "volume": snapshot.volume_id, "size_gib": snapshot.size_gib,
            "state": snapshot.state, "host": snapshot.host, "project": snapshot.project_id,
            "user_id": snapshot.user_id, "reason": snapshot.reason, "created_at": snapshot.created_at}


# ----- who sees what -------------------------------------------------------------------------------

def visible_volume(session, actor, volume_id, action="volume:get"):
    """The data volume, if the policy lets `actor` do `action` on it; NotFound (as for an id that
    names nothing) to whoever may not even see it, Forbidden to who sees it but may not act."""
    volume = session.get(Volume, volume_id)
    missing = f"no volume {volume_id}"
    if volume is None or volume.kind != "data":
        raise NotFound(missing)
    policy.enforce(actor, "volume:get", target(volume), hidden=missing)
    policy.enforce(actor, action, target(volume))
    return volume


def visible_snapshot(session, actor, snapshot_id, action="snapshot:get"):
    snapshot = session.get(Snapshot, snapshot_id)
    missing = f"no snapshot {snapshot_id}"
    if snapshot is None:
        raise NotFound(missing)
    policy.enforce(actor, "snapshot:get", target(snapshot), hidden=missing)
    policy.enforce(actor, action, target(snapshot))
    return snapshot


def list_volumes(session, actor, project=None, instance=None):
    """Own volumes and those of the projects one manages (admins: all); narrowed to a project or
    an instance."""
    policy.enforce(actor, "volume:list")
    query = visible_rows(select(Volume).where(Volume.kind == "data").order_by(Volume.id), Volume, actor, project)
    if instance is not None:
        query = query.where(Volume.instance_id == instance)
    return session.scalars(query).all()


def list_snapshots(session, actor, project=None, volume=None):
    policy.enforce(actor, "snapshot:list")
    query = visible_rows(select(Snapshot).order_by(Snapshot.id), Snapshot, actor, project)
    if volume is not None:
        visible_volume(session, actor, volume)  # NotFound for a volume one may not see
        query = query.where(Snapshot.volume_id == volume)
    return session.scalars(query).all()


def instance_volumes(session, instance_id):
    """The data volumes attached (or attaching, detaching) to an instance, by device."""
    return session.scalars(select(Volume).where(Volume.kind == "data", Volume.instance_id == instance_id)
                           .order_by(Volume.device)).all()


# ----- quota ---------------------------------------------------------------------------------------

def project_usage(session, project_id):
    """{"project": {volumes, volume_gib}, "users": {user_id: {...}}} from the data volume rows:
    every data volume of the project counts, whatever its state, until its row is gone."""
    rows = session.execute(
        select(Volume.user_id, func.count(Volume.id), func.coalesce(func.sum(Volume.size_gib), 0))
        .where(Volume.kind == "data", Volume.project_id == project_id).group_by(Volume.user_id))
    users = {user_id: {"volumes": int(count), "volume_gib": int(gib)} for user_id, count, gib in rows}
    return {"project": {r: sum(u[r] for u in users.values()) for r in COUNTED}, "users": users}


# ----- create --------------------------------------------------------------------------------------

def plan_create(session, actor, request):
    """(project id, source snapshot or None, image or None, size in GiB) of a create request,
    checked before anything is written."""
    project_id = policy.creation_project(actor, "volume:create", request.get("project"))
    snapshot = image = None
    if request.get("snapshot") is not None:
        snapshot = session.get(Snapshot, request["snapshot"])
        if snapshot is None or not policy.allowed(actor, "snapshot:get", target(snapshot)):
            raise NotFound(f"no snapshot {request['snapshot']}", {"snapshot": ["unknown snapshot"]})
        if snapshot.state != "available":
            raise Conflict(f"snapshot {snapshot.id} is {snapshot.state}", {"snapshot": [f"{snapshot.state}"]})
    if request.get("image") is not None:
        # An image the actor may boot (its visibility), and only an active one (it has its file).
        image = image_access.for_boot(session, actor, request["image"])
    smallest = snapshot.size_gib if snapshot else image.min_disk_gib if image else 1
    size_gib = request.get("size_gib") or smallest
    if size_gib < smallest:
        raise InvalidInput(f"at least {smallest} GiB: the source is that large",
                           {"size_gib": [f"at least {smallest} (the source's size)"]})
    return project_id, snapshot, image, size_gib


def _same_request(volume, request, size_gib):
    return (volume.size_gib == size_gib and volume.source_snapshot_id == request.get("snapshot")
            and volume.image_id == request.get("image"))


def record_volume(session, actor, request, project_id, size_gib, host, limits, snapshot=None, image=None,
                  retry=True, disk_format=None):
    """The `creating` row, charged to the project's volume quota in the same transaction; or the
    project's volume of that name when it was asked for with the same size and source (a repeat).
    `disk_format`: the host pool's (its name follows it; None: qcow2)."""
    existing = named_volume(session, project_id, request["name"])
    if existing is not None:
        if _same_request(existing, request, size_gib) and existing.state not in ("deleting", "error"):
            return existing
        raise Conflict(f"project {project_id} has a volume named {request['name']}",
                       {"name": ["another volume of the project has this name"]})
    volume = Volume(name=data_volume_name(disk_format or disks.DEFAULT_DISK_FORMAT), kind="data", host=host, capacity_bytes=size_gib * GIB,
                    display_name=request["name"], project_id=project_id, user_id=actor["id"], size_gib=size_gib,
                    source_snapshot_id=snapshot.id if snapshot else None, image_id=image.id if image else None,
                    state="creating")
    try:
        with quota.charged(session, QuotaLock, project_id, actor["id"], limits,
                           {"volumes": 1, "volume_gib": size_gib}, project_usage):
            session.add(volume)
    except IntegrityError:  # a concurrent repeat of the same request won: answer with its row
        if not retry:
            raise
        return record_volume(session, actor, request, project_id, size_gib, host, limits, snapshot, image,
                             retry=False, disk_format=disk_format)
    return volume


def named_volume(session, project_id, name):
    return session.scalars(select(Volume).where(Volume.kind == "data", Volume.project_id == project_id,
                                                Volume.display_name == name)).first()


def make_on_host(session, hosts, volume, data_dir, facts, snapshot=None, image=None):
    """The volume's disk on its host (empty, a copy of the snapshot, or copy-on-write over the
    image), then `available`. A failure removes what the host may have made: the row goes, or
    stays `error` when the host could not confirm."""
    if volume.state != "creating":
        return volume
    session.commit()  # nothing open while we wait on the host
    host, capacity = volume.host, volume.size_gib * GIB
    try:
        agent = hosts(host)
        if snapshot is not None:
            made = agent.clone_volume({"name": volume.name, "source": snapshot.pool_name, "capacity_bytes": capacity})
        elif image is not None:
            made = disks.make_volume(agent, host, image, volume.name, capacity, data_dir, facts)
        else:
            made = agent.create_volume({"name": volume.name, "capacity_bytes": capacity,
                                        "format": disks.format_of(volume.name)})
        disks.learn_pool(agent, host, facts)
    except (HostOperationFailed, NotFound, UnknownService) as exc:
        reason = str(exc) if not isinstance(exc, UnknownService) else f"host {host}: no host agent is serving it"
        _remove_after_failure(session, hosts, volume, f"create failed: {reason}")
        raise HostOperationFailed(f"volume {volume.display_name} could not be made on {host}: {reason}") from None
    made_available = session.execute(
        update(Volume).where(Volume.id == volume.id, Volume.state == "creating")
        .values(pool=facts.pools[host], path=made["path"], capacity_bytes=made["capacity_bytes"],
                state="available", reason=None)).rowcount == 1
    session.commit()
    session.refresh(volume)
    if not made_available:
        log.info("volume %s changed while it was made: now %s", volume.id, volume.state)
    return volume


def _remove_after_failure(session, hosts, row, reason):
    """Delete the row's disk on its host; then the row, or (the host did not confirm) `error`."""
    try:
        hosts(row.host).delete_volume({"name": row.name if isinstance(row, Volume) else row.pool_name})
    except UnknownService:
        pass  # no agent has ever served this host: nothing was made there
    except HostOperationFailed as exc:
        row.state, row.reason = "error", f"{reason}; cleanup failed: {exc}"[:255]
        session.commit()
        return
    session.delete(row)
    session.commit()


def pick_host(hosts_listed, volume_gib):
    """The host a volume with no instance, snapshot or image to follow goes to: an enabled host
    that is up, with the most disk left (its pool's size less its instances' disks)."""
    candidates = [h for h in hosts_listed if h.get("up") and h.get("state") == "enabled"]
    if not candidates:
        raise HostOperationFailed("no host is up to make the volume on")
    return max(candidates, key=lambda h: ((h.get("disk_gib") or 0) - (h.get("allocated_disk_gib") or 0),
                                          h["name"]))["name"]


# ----- owners --------------------------------------------------------------------------------------

def transfer_volumes(session, user_id, transfer_to):
    """A deleted user's data volumes and snapshots go to `transfer_to` (as their instances do).
    Compare-and-set on the old owner: asked again, nothing more changes. Returns how many moved.
    Without anyone to take them they stay in their project, where its managers see them (the
    instances service deletes the user's instances, which releases the volumes attached to them)."""
    moved = session.execute(update(Volume).where(Volume.kind == "data", Volume.user_id == user_id)
                            .values(user_id=transfer_to)).rowcount
    moved += session.execute(update(Snapshot).where(Snapshot.user_id == user_id)
                             .values(user_id=transfer_to)).rowcount
    session.commit()
    return moved


# ----- capacity ------------------------------------------------------------------------------------

def promised_bytes(session, host):
    """What the data volumes on `host` may grow to: the sum of their sizes (qcow2 files start
    small and fill as the guest writes, LVs take their size at once; sizes are never promised
    twice)."""
    return int(session.scalar(select(func.coalesce(func.sum(Volume.capacity_bytes), 0))
                              .where(Volume.kind == "data", Volume.host == host)) or 0)


def check_fits(session, usage, size_gib):
    """Refuse (409 naming size_gib) a new volume of `size_gib` on the host whose pool reports
    `usage` (host get_pool_usage) when the data volumes there would be promised more than the
    pool's size, or when the pool has not that much free now."""
    wanted, promised = size_gib * GIB, promised_bytes(session, usage["host"])
    capacity, available = usage["capacity_bytes"], usage["available_bytes"]
    if promised + wanted > capacity or wanted > available:
        raise Conflict(
            f"{size_gib} GiB does not fit host {usage['host']}'s pool: it holds {capacity / GIB:.0f} GiB, "
            f"{promised / GIB:.0f} GiB of it promised to data volumes, {available / GIB:.0f} GiB free now",
            {"size_gib": [f"at most {max(0, min(capacity - promised, available)) // GIB} GiB fit on "
                          f"{usage['host']}"]})


def pool_report(session, hosts, list_hosts, actor, only_host=None):
    """Admins: each up host's pool (libvirt's figures) with the bytes and number of its data
    volumes (only `only_host`'s when given); a host that does not answer is left out (and logged)."""
    policy.enforce(actor, "storage_pool:list")
    session.commit()
    report = []
    for host in list_hosts():
        if not host.get("up") or only_host not in (None, host["name"]):
            continue
        try:
            usage = hosts(host["name"]).get_pool_usage()
        except (HostOperationFailed, UnknownService) as exc:
            log.warning("the pool of %s: %s", host["name"], exc)
            continue
        there = session.scalars(select(Volume).where(Volume.kind == "data", Volume.host == usage["host"])).all()
        report.append({**usage, "promised_bytes": sum(v.capacity_bytes for v in there), "volumes": len(there)})
    return report


# ----- attach and detach ---------------------------------------------------------------------------

def check_attachable(volume, instance):
    """Refusals before anything changes: the instance's project, state and host."""
    if instance["project"] != volume.project_id:
        raise Conflict(f"volume {volume.id} belongs to project {volume.project_id}, the instance to "
                       f"{instance['project']}", {"instance": ["an instance of the volume's project"]})
    if instance["state"] not in ATTACHABLE_INSTANCE_STATES:
        raise Conflict(f"instance {instance['id']} is {instance['state']}: volumes attach to running or "
                       "stopped instances", {"instance": [f"instance is {instance['state']}"]})
    if instance["host"] != volume.host:
        raise Conflict(f"volume {volume.display_name} is on host {volume.host} and instance {instance['name']} "
                       f"runs on {instance['host']}: a volume attaches only to instances on its own host",
                       {"instance": [f"on host {instance['host']}, the volume on {volume.host}"]})


def claim_attachment(session, volume, instance_id, now):
    """available -> in-use/attaching with the instance's lowest free device (compare-and-set);
    the same instance asked again: the claim it has. Returns the volume."""
    if volume.state == "in-use" and volume.instance_id == instance_id and volume.attach_state in (
            "attaching", "attached"):
        return volume
    if volume.state != "available":
        where = f" (attached to {volume.instance_id})" if volume.instance_id else ""
        raise Conflict(f"volume {volume.id} is {volume.state}{where}", {"state": [volume.state]})
    for _attempt in range(len(DEVICES)):
        taken = {v.device for v in instance_volumes(session, instance_id)}
        free = [d for d in DEVICES if d not in taken]
        if not free:
            raise Conflict(f"instance {instance_id} has no free device", {"instance": ["no free device"]})
        try:
            claimed = session.execute(
                update(Volume).where(Volume.id == volume.id, Volume.state == "available")
                .values(state="in-use", attach_state="attaching", instance_id=instance_id, device=free[0],
                        attached_at=now, reason=None)).rowcount == 1
            session.commit()
        except IntegrityError:  # another volume took that device at the same moment: the next one
            session.rollback()
            continue
        session.refresh(volume)
        if not claimed:
            raise Conflict(f"volume {volume.id} is {volume.state}", {"state": [volume.state]})
        return volume
    raise Conflict(f"instance {instance_id} has no free device", {"instance": ["no free device"]})


def plug(session, hosts, volume):
    """Ask the host to attach the claimed volume, then `attached`. A failure undoes it on the host
    and puts the volume back `available` with the reason."""
    instance_id, device = volume.instance_id, volume.device
    session.commit()
    try:
        hosts(volume.host).attach_disk({"instance_id": instance_id, "path": volume.path, "device": device,
                                        "format": disks.format_of(volume.name), "serial": f"lc-vol-{volume.id}"})
    except (HostOperationFailed, NotFound, UnknownService) as exc:
        _unplug_quietly(hosts, volume)
        session.execute(update(Volume).where(Volume.id == volume.id, Volume.instance_id == instance_id,
                                             Volume.attach_state == "attaching")
                        .values(state="available", attach_state=None, instance_id=None, device=None,
                                attached_at=None, reason=f"attach to {instance_id} as {device} failed: {exc}"[:255]))
        session.commit()
        raise HostOperationFailed(f"volume {volume.display_name} could not be attached: {exc}") from None
    session.execute(update(Volume).where(Volume.id == volume.id, Volume.instance_id == instance_id,
                                         Volume.attach_state == "attaching").values(attach_state="attached"))
    session.commit()
    session.refresh(volume)
    return volume


def _unplug_quietly(hosts, volume):
    try:
        hosts(volume.host).detach_disk({"instance_id": volume.instance_id, "device": volume.device,
                                        "path": volume.path})
    except Exception as exc:  # noqa: BLE001 - the reason of the first failure is what is reported
        log.warning("undoing the attach of volume %s: %s", volume.id, exc)


def start_detach(session, volume):
    """in-use (attached, attaching, detaching) -> detaching; `available` answers as it is (asked again)."""
    if volume.state == "available":
        return False
    if volume.state != "in-use":
        raise Conflict(f"volume {volume.id} is {volume.state}", {"state": [volume.state]})
    session.execute(update(Volume).where(Volume.id == volume.id, Volume.state == "in-use")
                    .values(attach_state="detaching"))
    session.commit()
    session.refresh(volume)
    return volume.state == "in-use"


def unplug(session, hosts, volume):
    """Ask the host to detach it (a domain that is gone has nothing to detach), then `available`.
    A failure leaves it `detaching` with the reason: asked again (or reconcile) finishes it."""
    instance_id, device = volume.instance_id, volume.device
    session.commit()
    try:
        hosts(volume.host).detach_disk({"instance_id": instance_id, "device": device, "path": volume.path})
    except UnknownService:
        pass  # no agent has ever served this host: no domain there holds the disk
    except (HostOperationFailed, NotFound) as exc:
        session.execute(update(Volume).where(Volume.id == volume.id, Volume.attach_state == "detaching")
                        .values(reason=f"detach from {instance_id} failed: {exc}"[:255]))
        session.commit()
        raise HostOperationFailed(f"volume {volume.display_name} could not be detached: {exc}") from None
    released(session, volume.id, instance_id)
    session.refresh(volume)
    return volume


def released(session, volume_id, instance_id):
    """The volume no longer belongs to the instance: `available` (compare-and-set on the instance)."""
    done = session.execute(update(Volume).where(Volume.id == volume_id, Volume.instance_id == instance_id)
                           .values(state="available", attach_state=None, instance_id=None, device=None,
                                   attached_at=None, reason=None)).rowcount
    session.commit()
    return done == 1


def release_instance_volumes(session, instance_id):
    """The instance's domain is gone (its delete destroyed it): its volumes are `available`, their
    data kept. Returns how many were released now (0 when asked again)."""
    return sum(released(session, volume.id, instance_id) for volume in instance_volumes(session, instance_id))


# ----- delete --------------------------------------------------------------------------------------

def delete_volume(session, hosts, volume):
    """available|error|deleting -> deleting -> the host's delete -> the row goes. True when deleted."""
    if volume.state == "in-use":
        raise Conflict(f"volume {volume.display_name} is attached to {volume.instance_id} as {volume.device}: "
                       "detach it first", {"state": ["in-use"]})
    if volume.state == "creating":
        raise Conflict(f"volume {volume.display_name} is being created", {"state": ["creating"]})
    moved = session.execute(update(Volume).where(Volume.id == volume.id,
                                                 Volume.state.in_(("available", "error", "deleting")))
                            .values(state="deleting")).rowcount
    session.commit()
    if not moved:
        session.refresh(volume)
        raise Conflict(f"volume {volume.id} is {volume.state}", {"state": [volume.state]})
    return _delete_on_host(session, hosts, volume, volume.name)


def _delete_on_host(session, hosts, row, pool_name):
    try:
        hosts(row.host).delete_volume({"name": pool_name})
    except UnknownService:
        pass  # no agent has ever served this host: nothing to delete there
    except HostOperationFailed as exc:
        row.reason = f"delete failed: {exc}"[:255]
        session.commit()
        raise
    session.delete(row)
    session.commit()
    return True


# ----- snapshots -----------------------------------------------------------------------------------

def record_snapshot(session, actor, volume, name):
    """The `creating` snapshot row; or the project's snapshot of that name when it is of this
    volume (a repeat)."""
    existing = session.scalars(select(Snapshot).where(Snapshot.project_id == volume.project_id,
                                                      Snapshot.name == name)).first()
    if existing is not None:
        if existing.volume_id == volume.id and existing.state in ("creating", "available"):
            return existing
        raise Conflict(f"project {volume.project_id} has a snapshot named {name}",
                       {"name": ["another snapshot of the project has this name"]})
    if volume.state not in ("available", "in-use"):
        raise Conflict(f"volume {volume.id} is {volume.state}", {"state": [volume.state]})
    snapshot = Snapshot(name=name, pool_name=snapshot_volume_name(disks.format_of(volume.name)),
                        project_id=volume.project_id,
                        user_id=actor["id"], volume_id=volume.id, host=volume.host, size_gib=volume.size_gib,
                        state="creating")
    session.add(snapshot)
    try:
        session.commit()
    except IntegrityError:  # a concurrent repeat won: its row
        session.rollback()
        existing = session.scalars(select(Snapshot).where(Snapshot.project_id == volume.project_id,
                                                          Snapshot.name == name)).first()
        if existing is None or existing.volume_id != volume.id:
            raise Conflict(f"project {volume.project_id} has a snapshot named {name}",
                           {"name": ["another snapshot of the project has this name"]}) from None
        return existing
    return snapshot


def make_snapshot(session, hosts, snapshot, volume):
    """The host's full copy of the volume (crash-consistent while attached), then `available`."""
    if snapshot.state != "creating":
        return snapshot
    session.commit()
    try:
        made = hosts(snapshot.host).clone_volume({"name": snapshot.pool_name, "source": volume.name})
    except (HostOperationFailed, NotFound, UnknownService) as exc:
        _remove_after_failure(session, hosts, snapshot, f"snapshot failed: {exc}")
        raise HostOperationFailed(f"snapshot {snapshot.name} could not be made: {exc}") from None
    session.execute(update(Snapshot).where(Snapshot.id == snapshot.id, Snapshot.state == "creating")
                    .values(path=made["path"], state="available"))
    session.commit()
    session.refresh(snapshot)
    return snapshot


def delete_snapshot(session, hosts, snapshot):
    if snapshot.state == "creating":
        raise Conflict(f"snapshot {snapshot.name} is being made", {"state": ["creating"]})
    snapshot.state = "deleting"
    session.commit()
    return _delete_on_host(session, hosts, snapshot, snapshot.pool_name)


# ----- reconcile -----------------------------------------------------------------------------------

FAILED_ATTACH = re.compile(r"^attach to ([0-9a-f-]{36}) as (vd[b-z]) failed")


def remove_leftover_device(session, hosts, volume):
    """A failed attach whose host answered too late may have plugged the disk after all (the undo's
    detach came first): detach that device if it holds this volume's file (detach_disk checks),
    while the volume is still available with that reason; then the reason goes. False when the
    reason is not a failed attach's."""
    match = FAILED_ATTACH.match(volume.reason or "")
    if volume.state != "available" or match is None:
        return False
    instance_id, device = match.groups()
    hosts(volume.host).detach_disk({"instance_id": instance_id, "device": device, "path": volume.path})
    session.execute(update(Volume).where(Volume.id == volume.id, Volume.reason == volume.reason)
                    .values(reason=None))
    session.commit()
    return True


def reconcile(session, hosts, now=None):
    """Finish or undo what a dead worker left half-way, once it is older than RECONCILE_GRACE:
    a `creating` volume or snapshot is removed (on the host and its row), a `deleting` one
    deleted, an `attaching` attachment undone, a `detaching` one finished, a device a failed
    attach may have left on its instance removed. Returns [(kind, id, action)]; a host that fails
    is tried again next time."""
    stale = (now or utcnow()) - RECONCILE_GRACE
    done = []
    for volume in session.scalars(select(Volume).where(
            Volume.kind == "data", Volume.state == "available", Volume.updated_at < stale,
            Volume.reason.like("attach to %"))).all():
        try:
            if remove_leftover_device(session, hosts, volume):
                done.append(("volume", volume.id, "leftover device removed"))
        except Exception as exc:  # noqa: BLE001 - one host down must not stop the others
            session.rollback()
            log.warning("reconcile of volume %s: %s", volume.id, exc)
    volumes = session.scalars(select(Volume).where(
        Volume.kind == "data", Volume.updated_at < stale,
        or_(Volume.state.in_(("creating", "deleting")), Volume.attach_state.in_(("attaching", "detaching"))))).all()
    for volume in volumes:
        try:
            if volume.state == "creating":
                _remove_after_failure(session, hosts, volume, "create interrupted")
                done.append(("volume", volume.id, "create undone"))
            elif volume.state == "deleting":
                _delete_on_host(session, hosts, volume, volume.name)
                done.append(("volume", volume.id, "deleted"))
            else:
                if volume.attach_state == "attaching":
                    volume.attach_state = "detaching"
                    session.commit()
                unplug(session, hosts, volume)
                done.append(("volume", volume.id, "detached"))
        except Exception as exc:  # noqa: BLE001 - one host down must not stop the others
            session.rollback()
            log.warning("reconcile of volume %s: %s", volume.id, exc)
    snapshots = session.scalars(select(Snapshot).where(
        Snapshot.state.in_(("creating", "deleting")), Snapshot.created_at < stale)).all()
    for snapshot in snapshots:
        try:
            if snapshot.state == "creating":
                _remove_after_failure(session, hosts, snapshot, "snapshot interrupted")
            else:
                _delete_on_host(session, hosts, snapshot, snapshot.pool_name)
            done.append(("snapshot", snapshot.id, "removed"))
        except Exception as exc:  # noqa: BLE001
            session.rollback()
            log.warning("reconcile of snapshot %s: %s", snapshot.id, exc)
    return done
