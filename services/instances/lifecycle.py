"""What users ask of instances: create (record it), delete and power actions (mark them). The work
on hosts happens in saga.py and power.py, driven by events, so a request returns in milliseconds.
Who may ask is asked of access.py, which request is allowed from which state of states.py, and
whether it fits the quota of quotas.py."""
import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from common.errors import Conflict, InvalidInput
from services.instances import access, instance_store, quotas, shares, states
from services.instances.models import Flavor, Instance


def list_flavors(session):
    return session.scalars(select(Flavor).order_by(Flavor.memory_mib, Flavor.id)).all()


def get_flavor(session, flavor_id):
    flavor = session.get(Flavor, flavor_id)
    if flavor is None:
        raise InvalidInput(f"no flavor with id {flavor_id}", {"flavor": ["unknown flavor"]})
    return flavor


def check_flavor_fits_image(flavor, image):
    """InvalidInput naming `flavor` when it is below the image's minimum disk or memory."""
    if flavor.disk_gib < (image.get("min_disk_gib") or 0):
        raise InvalidInput(f"flavor {flavor.name} has {flavor.disk_gib} GiB of disk, image {image['name']} "
                           f"needs at least {image['min_disk_gib']}", {"flavor": ["below the image's minimum disk"]})
    if image.get("min_memory_mib") and flavor.memory_mib < image["min_memory_mib"]:
        raise InvalidInput(f"flavor {flavor.name} has {flavor.memory_mib} MiB of memory, image {image['name']} "
                           f"needs at least {image['min_memory_mib']}",
                           {"flavor": ["below the image's minimum memory"]})


def check_stopped_for_save(instance):
    """Only a stopped guest's disk is saved: a running one writes it while it is copied."""
    if instance.state != "stopped":
        raise Conflict(f"instance {instance.name} is {instance.state}: stop it before saving it as an image",
                       {"state": [f"{instance.state}, not stopped"]})


def _name_taken(name, holder_state=None):
    detail = f" (it is {holder_state})" if holder_state else ""
    return Conflict(f"you already have an instance named {name}{detail}", {"name": ["already in use"]})


def record_instance(session, actor, request, flavor, key, project_id, limits, instance_id=None):
    """Store the instance `pending` in `project_id`, charged to its quota (`limits`: what
    accounts.get_quota_limits said for the project and the actor). The name is held by a unique key
    on (owner, name_key), so two creates with one name on different replicas cannot both succeed."""
    holder = session.scalars(select(Instance).where(
        Instance.user_id == actor["id"], Instance.name_key == request["name"])).first()
    if holder is not None:
        raise _name_taken(request["name"], holder.state)
    instance = Instance(
        id=instance_id or str(uuid.uuid4()), name=request["name"], name_key=request["name"], user_id=actor["id"],
        project_id=project_id, flavor_id=flavor.id, image_id=request["image"], key_id=key["id"],
        public_key=key["public_key"], user_data=request.get("user_data"), state="pending",
        placement_group=request.get("group"), anti_affinity=bool(request.get("anti_affinity")),
        **shares.flavor_defaults(flavor))
    try:
        with quotas.charged(session, project_id, actor["id"], limits, quotas.for_create(flavor)):
            session.add(instance)  # the instance and its action log entry in one commit
            instance_store.start_action(session, instance.id, "create", actor, commit=False)
    except IntegrityError:
        raise _name_taken(request["name"]) from None
    return instance


def request_delete(session, actor, instance_id):
    """Returns the instance after the request: `deleted` when nothing was made yet, `deleting`
    when the delete saga must remove things (the caller dispatches it), unchanged when a delete is
    already under way."""
    instance = access.visible_instance(session, actor, instance_id, "instance:delete")
    mark_deleted(session, instance, actor)
    return instance


def mark_deleted(session, instance, actor, message=None):
    """Move the instance to `deleted` or `deleting` unless a delete is under way; `actor` None is
    labcloud itself. Returns the new state, or None if this call moved nothing; `instance` is
    refreshed either way."""
    moved = None
    if states.state(instance.state).on_delete != states.DELETE_UNDER_WAY:
        moved = instance_store.move(session, instance.id, "delete", reason=None, commit=False)
        if moved is not None:
            instance_store.start_action(session, instance.id, "delete", actor, message)  # commits both
            if moved == "deleted":
                instance_store.finish_action(session, instance.id, "create", "error", "deleted before it was built")
                instance_store.finish_action(session, instance.id, "delete", "success")
    session.refresh(instance)
    return moved


def request_power(session, actor, instance_id, action, quota_limits):
    """Mark a stop, start or reboot; the power saga carries it out. Asked twice while the first is
    under way, it answers with the instance as it is. A move that makes the instance use compute
    again (start) is checked against the quota: `quota_limits(project_id, user_id)` gives the limits
    (accounts.get_quota_limits), asked only then and before the transaction opens."""
    instance = access.visible_instance(session, actor, instance_id, f"instance:{action}")
    if instance.state == states.UNDER_WAY[action]:
        return instance, False
    to_state = states.require(action, instance.state)  # 409 naming the current state
    more = quotas.growth(session.get(Flavor, instance.flavor_id), instance.state, to_state, instance.memory_mib)
    if more:
        limits = quota_limits(instance.project_id, instance.user_id)
        with quotas.charged(session, instance.project_id, instance.user_id, limits, more):
            moved = _mark_power(session, instance.id, action, actor)
    else:
        moved = _mark_power(session, instance.id, action, actor)
        session.commit()
    session.refresh(instance)
    if moved is None:  # moved by someone else meanwhile: say where it is now
        states.require(action, instance.state)
        return instance, False
    return instance, True


def _mark_power(session, instance_id, action, actor):
    """The move and its action log entry, left for the caller to commit together."""
    moved = instance_store.move(session, instance_id, action, reason=None, commit=False)
    if moved is not None:
        instance_store.start_action(session, instance_id, action, actor, commit=False)
    return moved
