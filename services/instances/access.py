"""Who may see and act on which instance, and in which project a new instance is made. Every
decision is asked of common.policy; this module only says what the target is.

An instance's owner, the managers of its project and admins may see it and act on it. To anyone
else it looks missing (404, the same answer as for an id that names nothing), so ids cannot be
probed, not even by other members of its project.
"""
import uuid

from sqlalchemy import select

from common import policy
from common.visibility import visible_rows
from common.errors import NotFound
from services.instances.models import Instance


def target(instance):
    """What the policy rules look at."""
    return {"user_id": instance.user_id, "project_id": instance.project_id}


def visible_instance(session, actor, instance_id, action="instance:get", include_deleted=False):
    """The instance, if the policy lets `actor` do `action` on it; otherwise NotFound, worded as for
    an id that names nothing. A deleted instance is NotFound too, unless asked for."""
    missing = f"no instance {instance_id}"
    canonical = _canonical_id(instance_id)
    instance = session.get(Instance, canonical) if canonical else None
    if instance is None:
        raise NotFound(missing)
    policy.enforce(actor, action, target(instance), hidden=missing)
    if instance.state == "deleted" and not include_deleted:
        raise NotFound(f"instance {instance_id} was deleted")
    return instance


def _canonical_id(instance_id):
    """Instance ids are UUIDs: anything else names nothing (and never reaches the database)."""
    try:
        return str(uuid.UUID(str(instance_id)))
    except ValueError:
        return None


def list_instances(session, actor, include_deleted=False, project=None):
    """Admins see every instance; others their own and every instance of the projects they manage.
    `project` narrows the list to one project; naming a project one is not a member of is NotFound
    (admins: any project, an unknown one lists nothing)."""
    policy.enforce(actor, "instance:list")
    query = visible_rows(select(Instance).order_by(Instance.created_at, Instance.id), Instance, actor, project)
    if not include_deleted:
        query = query.where(Instance.state != "deleted")
    return session.scalars(query).all()


def creation_project(actor, requested=None):
    """The project a new instance of `actor` goes to (common.policy.creation_project)."""
    return policy.creation_project(actor, "instance:create", requested)
