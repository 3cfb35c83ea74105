"""A host pool's volumes against storage's records, both ways (the instances service's reconcile
reads each host's inventory and asks here, `check_host_volumes`):
- unowned: data volumes and snapshots without a row, cached copies of images that are gone or
  deleted (a host that was down when its image was deleted keeps its copy until then).
  Reconcile waits its grace period, then asks for the removal (`delete_unowned_volume`), which
  checks again: a record made meanwhile keeps the volume.
- missing: a data volume recorded `available` or `in-use` whose disk the host no longer has goes
  to `error` with the reason (never silently). Only rows settled before the inventory was read
  are judged, so a volume made during the read is not taken for missing.

Only names labcloud gives are ever reported (a pool may hold volumes of other tools: never
touched). Root disks (`root-<instance>.*`) are owned by live instances, which only the instances
service knows: its reconcile handles them (`delete_orphan_volume`).
"""
import re

from nameko.exceptions import UnknownService
from sqlalchemy import select, update

from services.storage.models import Image, Snapshot, Volume
from services.storage.schemas import DATA_OR_SNAPSHOT_NAME, IMAGE_COPY_NAME

DATA_OR_SNAPSHOT = re.compile(DATA_OR_SNAPSHOT_NAME)
IMAGE_COPY = re.compile(IMAGE_COPY_NAME)


def is_storage_name(name):
    return bool(DATA_OR_SNAPSHOT.match(name) or IMAGE_COPY.match(name))


def _owned(session, host, names):
    """The subset of `names` (all storage names) that a record on `host` owns now."""
    owned = set(session.scalars(select(Volume.name).where(Volume.host == host, Volume.name.in_(names))))
    owned |= set(session.scalars(select(Snapshot.pool_name).where(Snapshot.host == host,
                                                                  Snapshot.pool_name.in_(names))))
    image_ids = {int(m.group(1)) for m in map(IMAGE_COPY.match, names) if m}
    if image_ids:
        # A deleted image keeps its row (its id is never reused): its copies are nobody's.
        existing = set(session.scalars(select(Image.id).where(Image.id.in_(image_ids), Image.state != "deleted")))
        owned |= {n for n in names if (m := IMAGE_COPY.match(n)) and int(m.group(1)) in existing}
    return owned


def unowned(session, host, names):
    """The names among `names` (a host pool's volumes) that are labcloud's storage names and that
    no record owns, sorted."""
    candidates = sorted({n for n in names if is_storage_name(n)})
    if not candidates:
        return []
    owned = _owned(session, host, candidates)
    return [n for n in candidates if n not in owned]


def mark_missing(session, host, names, listed_at):
    """Data volumes of `host` settled before `listed_at` whose name is not among `names` (the
    pool's listing then) go to `error`. Returns their ids."""
    present = set(names)
    candidates = session.scalars(select(Volume).where(
        Volume.host == host, Volume.kind == "data", Volume.state.in_(("available", "in-use")),
        Volume.updated_at < listed_at)).all()
    missing = []
    for volume in candidates:
        if volume.name in present:
            continue
        # Compare-and-set: a change since the read (a delete, a detach) wins over this verdict.
        done = session.execute(update(Volume).where(Volume.id == volume.id, Volume.state == volume.state,
                                                    Volume.updated_at == volume.updated_at)
                               .values(state="error", reason=f"its disk is missing on host {host}"))
        if done.rowcount == 1:
            missing.append(volume.id)
    session.commit()
    return missing


def delete_unowned(session, hosts, host, name):
    """Delete `name` on `host` if it is still unowned. {"deleted": bool, "owned": bool}."""
    if _owned(session, host, [name]):
        return {"deleted": False, "owned": True}
    session.rollback()  # no transaction stays open across the host call
    try:
        deleted = hosts(host).delete_volume({"name": name})["deleted"]
    except UnknownService:
        deleted = False  # no agent has ever served this host: nothing to delete there
    return {"deleted": deleted, "owned": False}
