"""What users ask of instances: create (record it), look, delete and power actions (mark them).
The work on hosts happens in saga.py and power.py, driven by events, so a request returns in
milliseconds. Which request is allowed from which state is asked of states.py."""
import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from common.errors import Conflict, InvalidInput, NotFound
from services.instances import instance_store, states
from services.instances.models import Flavor, Instance


def list_flavors(session):
    return session.scalars(select(Flavor).order_by(Flavor.memory_mib, Flavor.id)).all()


def get_flavor(session, flavor_id):
    flavor = session.get(Flavor, flavor_id)
    if flavor is None:
        raise InvalidInput(f"no flavor with id {flavor_id}", {"flavor": ["unknown flavor"]})
    return flavor


def visible_instance(session, actor, instance_id, include_deleted=False):
    """An instance the actor may see: their own, or any for an admin. Others' look missing, and so
    does a deleted one (unless asked for)."""
    instance = session.get(Instance, instance_id)
    if instance is None or (actor["role"] != "admin" and instance.user_id != actor["id"]):
        raise NotFound(f"no instance {instance_id}")
    if instance.state == "deleted" and not include_deleted:
        raise NotFound(f"instance {instance_id} was deleted")
    return instance


def list_instances(session, actor, include_deleted=False):
    query = select(Instance).order_by(Instance.created_at, Instance.id)
    if actor["role"] != "admin":
        query = query.where(Instance.user_id == actor["id"])
    if not include_deleted:
        query = query.where(Instance.state != "deleted")
    return session.scalars(query).all()


def _name_taken(name, holder_state=None):
    detail = f" (it is {holder_state})" if holder_state else ""
    return Conflict(f"you already have an instance named {name}{detail}", {"name": ["already in use"]})


def record_instance(session, actor, request, flavor, key):
    """Store the instance `pending`. The name is held by a unique key on (owner, name_key), so two
    creates with one name on different replicas cannot both succeed."""
    holder = session.scalars(select(Instance).where(
        Instance.user_id == actor["id"], Instance.name_key == request["name"])).first()
    if holder is not None:
        raise _name_taken(request["name"], holder.state)
    instance = Instance(
        id=str(uuid.uuid4()), name=request["name"], name_key=request["name"], user_id=actor["id"],
        flavor_id=flavor.id, image_id=request["image"], key_id=key["id"], public_key=key["public_key"],
        user_data=request.get("user_data"), state="pending")
    session.add(instance)
    instance_store.start_action(session, instance.id, "create", actor, commit=False)
    try:
        session.commit()  # the instance and its action log entry together
    except IntegrityError:
        session.rollback()
        raise _name_taken(request["name"]) from None
    return instance


def request_delete(session, actor, instance_id):
    """Returns the instance after the request: `deleted` when nothing was made yet, `deleting`
    when the delete saga must remove things (the caller dispatches it), unchanged when a delete is
    already under way."""
    instance = visible_instance(session, actor, instance_id)
    if states.state(instance.state).on_delete != states.DELETE_UNDER_WAY:
        moved = instance_store.move(session, instance.id, "delete", reason=None)
        if moved is not None:
            instance_store.start_action(session, instance.id, "delete", actor)
            if moved == "deleted":
                instance_store.finish_action(session, instance.id, "create", "error", "deleted before it was built")
                instance_store.finish_action(session, instance.id, "delete", "success")
    session.refresh(instance)
    return instance


def request_power(session, actor, instance_id, action):
    """Mark a stop, start or reboot; the power saga carries it out. Asked twice while the first is
    under way, it answers with the instance as it is."""
    instance = visible_instance(session, actor, instance_id)
    if instance.state == states.UNDER_WAY[action]:
        return instance, False
    states.require(action, instance.state)  # 409 naming the current state
    if instance_store.move(session, instance.id, action, reason=None) is None:
        session.refresh(instance)  # moved by someone else meanwhile: say where it is now
        states.require(action, instance.state)
        return instance, False
    instance_store.start_action(session, instance.id, action, actor)
    session.refresh(instance)
    return instance, True
