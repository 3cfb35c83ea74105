"""What users ask of instances: create (record it), look, delete (mark it). The work on hosts
happens in saga.py, driven by events, so a request returns in milliseconds."""
import uuid

from sqlalchemy import select

from common.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.instances.models import Flavor, Instance

LIVE_STATES = ("pending", "building", "running", "error", "deleting")


def list_flavors(session):
    return session.scalars(select(Flavor).order_by(Flavor.memory_mib, Flavor.id)).all()


def get_flavor(session, flavor_id):
    flavor = session.get(Flavor, flavor_id)
    if flavor is None:
        raise InvalidInput(f"no flavor with id {flavor_id}", {"flavor": ["unknown flavor"]})
    return flavor


def visible_instance(session, actor, instance_id):
    """An instance the actor may see: their own, or any for an admin. Others' look missing."""
    instance = session.get(Instance, instance_id)
    if instance is None or (actor["role"] != "admin" and instance.user_id != actor["id"]):
        raise NotFound(f"no instance {instance_id}")
    return instance


def list_instances(session, actor, include_deleted=False):
    query = select(Instance).order_by(Instance.created_at, Instance.id)
    if actor["role"] != "admin":
        query = query.where(Instance.user_id == actor["id"])
    if not include_deleted:
        query = query.where(Instance.state != "deleted")
    return session.scalars(query).all()


def check_name_free(session, actor, name):
    taken = session.scalars(select(Instance.id).where(
        Instance.user_id == actor["id"], Instance.name == name,
        Instance.state.in_(LIVE_STATES))).first()
    if taken:
        raise Conflict(f"you already have an instance named {name}", {"name": ["already in use"]})


def record_instance(session, actor, request, flavor, key):
    check_name_free(session, actor, request["name"])
    instance = Instance(
        id=str(uuid.uuid4()), name=request["name"], user_id=actor["id"], flavor_id=flavor.id,
        image_id=request["image"], key_id=key["id"], public_key=key["public_key"],
        user_data=request.get("user_data"), state="pending")
    session.add(instance)
    session.commit()
    return instance


def request_delete(session, actor, instance_id, now):
    """Returns (instance, needs_teardown). A pending instance owns nothing yet; a building one is
    torn down by its own saga at the next checkpoint; others need a teardown run."""
    instance = visible_instance(session, actor, instance_id)
    if instance.state in ("deleted", "deleting"):
        return instance, False
    if instance.user_id != actor["id"] and actor["role"] != "admin":
        raise Forbidden("not your instance")
    previous = instance.state
    if previous == "pending":
        instance.state, instance.deleted_at = "deleted", now
    else:
        instance.state = "deleting"
    session.commit()
    return instance, previous in ("running", "error")
