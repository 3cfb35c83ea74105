"""Projects (courses): creating, finding, changing and deleting them.

Visibility: a project the actor may not see answers exactly like one that does not exist
(NotFound), so ids and names cannot be probed; admins see every project. Who may do what is
common/policy.py's decision, asked with the target {"project_id": id}.
"""
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from common import policy
from common.errors import Conflict, InvalidInput, NotFound
from services.accounts import memberships
from services.accounts.models import Project, ProjectMember, SshKey, User, is_id

# Request field -> model attribute, for the fields a project's managers may change.
DEFAULT_FIELDS = {"description": "description", "default_lease_hours": "default_lease_hours",
                  "default_flavor": "default_flavor_id", "default_image": "default_image_id",
                  "idle_policy": "idle_policy"}


def _not_found(project_id):
    # The same answer whether the project is missing or hidden from the actor.
    return NotFound(f"no project {project_id}")


def find_project(session, project_id):
    """The project, or None (also for ids that cannot be ids)."""
    return session.get(Project, project_id) if is_id(project_id) else None


def named_in_request(session, project_id):
    """The project an admin's request names, or NotFound naming the `project` field."""
    project = find_project(session, project_id)
    if project is None:
        raise NotFound(f"no project {project_id}", {"project": ["no such project"]})
    return project


def find_by_name(session, name):
    return session.scalars(select(Project).where(Project.name == name)).first()


def visible_project(session, actor, project_id):
    """The project if the actor may see it (admin, or a member or manager of it), else NotFound."""
    policy.enforce(actor, "project:get", {"project_id": project_id}, hidden=_not_found(project_id).message)
    project = find_project(session, project_id)
    if project is None:
        raise _not_found(project_id)
    return project


def project_for(session, actor, project_id, action, what=None):
    """The project, if the actor may see it (else NotFound) and may do `action` on it (else
    Forbidden: a member learns nothing new by being told they may not change their project)."""
    project = visible_project(session, actor, project_id)
    policy.enforce(actor, action, {"project_id": project.id}, what=what)
    return project


def list_projects(session, actor):
    """Every project for admins; the projects the actor belongs to for everyone else."""
    policy.enforce(actor, "project:list")
    query = select(Project).order_by(Project.id)
    if not policy.is_admin(actor):
        query = query.join(ProjectMember, ProjectMember.project_id == Project.id).where(
            ProjectMember.user_id == actor["id"])
    return list(session.scalars(query))


def _defaults_from(request):
    return {attribute: request[field] for field, attribute in DEFAULT_FIELDS.items() if field in request}


def _settings_of(request):
    """The project's attributes a create request sets (description empty if not given)."""
    return {"description": "", **_defaults_from(request)}


def _same_project(project, request, quota):
    """A create request that made this very project (a redelivery) rather than another one."""
    wanted = _settings_of(request)
    return (all(getattr(project, attribute) == value for attribute, value in wanted.items())
            and project.quota == quota)


def _managers(session, user_ids):
    """The users named as managers; InvalidInput naming `managers` for ids of no live user."""
    found = {user.id: user for user in session.scalars(select(User).where(User.id.in_(user_ids)))}
    missing = [user_id for user_id in user_ids
               if user_id not in found or found[user_id].status in memberships.GONE_STATUSES]
    if missing:
        raise InvalidInput(f"no such users: {', '.join(map(str, missing))}",
                           {"managers": [f"no user {user_id}" for user_id in missing]})
    return [found[user_id] for user_id in dict.fromkeys(user_ids)]


def _name_taken(name):
    return Conflict(f"a project named {name!r} exists", {"name": ["already taken"]})


def create_project(session, actor, request, default_quota, now):
    """Returns (project, created). A request repeating an existing project's name and settings
    returns that project (a redelivery); another project of that name is a Conflict."""
    policy.enforce(actor, "project:create", what="create projects")
    quota = dict(default_quota, **request.get("quota", {}))
    managers = _managers(session, request.get("managers", []))
    existing = find_by_name(session, request["name"])
    if existing is not None:
        if not _same_project(existing, request, quota):
            raise _name_taken(request["name"])
        return existing, False
    project = Project(name=request["name"], created_at=now, **_settings_of(request))
    project.set_quota(quota)
    session.add(project)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        existing = find_by_name(session, request["name"])
        if existing is None or not _same_project(existing, request, quota):
            raise _name_taken(request["name"]) from None
        return existing, False
    for user in managers:
        memberships.join(session, project.id, user.id, "manager", now)
    session.commit()
    return project, True


def update_project(session, actor, project_id, request):
    """Change the description and defaults. Returns (project, changed)."""
    project = project_for(session, actor, project_id, "project:update", what="change this project")
    changes = {attribute: value for attribute, value in _defaults_from(request).items()
               if getattr(project, attribute) != value}
    for attribute, value in changes.items():
        setattr(project, attribute, value)
    session.commit()
    return project, bool(changes)


def project_to_delete(session, actor, project_id):
    """The project an admin asks to delete, or None when it is already gone (a repeated delete
    answers `deleted: false`). Others: NotFound or Forbidden as for any project."""
    if policy.is_admin(actor):
        return find_project(session, project_id)
    return project_for(session, actor, project_id, "project:delete", what="delete projects")


def delete_project(session, project, counted_usage):
    """Delete the project unless the owning services still count instances or data volumes in it
    (`counted_usage`: quotas.merged_usage of their get_project_usage). Memberships go with it
    (foreign key), keys shared with it become private again. True if this call deleted it."""
    counted = (counted_usage or {}).get("project", {})
    in_use = {resource: counted[resource] for resource in ("instances", "volumes") if counted.get(resource)}
    if in_use:
        held = " and ".join(f"{number} {resource}" for resource, number in in_use.items())
        raise Conflict(f"project {project.name} still has {held}; delete them first",
                       {resource: [f"{number} in use"] for resource, number in in_use.items()})
    # SQLite's ON DELETE SET NULL needs foreign keys on; saying it here holds on any engine.
    session.execute(update(SshKey).where(SshKey.project_id == project.id).values(project_id=None))
    session.execute(memberships.delete_all_of_project(project.id))
    deleted = session.execute(delete(Project).where(Project.id == project.id)).rowcount
    session.commit()
    return deleted == 1


def ensure_project(session, name, manager_id, now, description=""):
    """A project named `name` with `manager_id` among its managers, made if missing, with no
    limits (the bootstrap's `admin` project). Commits. Returns the project."""
    project = find_by_name(session, name)
    if project is None:
        project = Project(name=name, description=description, created_at=now)
        session.add(project)
        session.flush()
    memberships.join(session, project.id, manager_id, "manager", now)
    session.commit()
    return project


# ----- members --------------------------------------------------------------------------------

def _live_user(session, user_id):
    user = session.get(User, user_id) if is_id(user_id) else None
    if user is None or user.status in memberships.GONE_STATUSES:
        raise NotFound(f"no user {user_id}", {"user": ["no such user"]})
    return user


def _enforce_role_change(actor, project, old_role, new_role):
    """Making someone a manager, or a manager no longer one, is for admins (project:manager:set)."""
    if old_role != new_role and "manager" in (old_role, new_role):
        policy.enforce(actor, "project:manager:set", {"project_id": project.id},
                       what="name or remove a project's managers")


def list_members(session, actor, project_id):
    project = project_for(session, actor, project_id, "project:member:list",
                          what="list this project's members")
    return memberships.members_of(session, project.id)


def add_member(session, actor, project_id, user_id, role, quota, now):
    """Upsert: the user gets `role` (and the caps given) whether or not they were a member.
    Returns (membership, changed)."""
    project = project_for(session, actor, project_id, "project:member:add", what="add members")
    user = _live_user(session, user_id)
    current = memberships.find(session, project.id, user.id)
    _enforce_role_change(actor, project, current.role if current else None, role)
    try:
        member, changed = memberships.join(session, project.id, user.id, role, now, quota)
        session.commit()
    except IntegrityError:
        # The same request (or another) added the membership meanwhile: change that one.
        session.rollback()
        member, changed = memberships.join(session, project.id, user.id, role, now, quota)
        session.commit()
    return member, changed


def _membership(session, project, user_id):
    member = memberships.find(session, project.id, user_id) if is_id(user_id) else None
    if member is None:
        raise NotFound(f"user {user_id} is not a member of project {project.name}",
                       {"user": ["not a member"]})
    return member


def update_member(session, actor, project_id, user_id, request):
    """Change a member's role or caps. Returns (membership, changed)."""
    project = project_for(session, actor, project_id, "project:member:add", what="change members")
    member = _membership(session, project, user_id)
    _enforce_role_change(actor, project, member.role, request.get("role", member.role))
    changed = memberships.change(member, request.get("role"), request.get("quota"))
    session.commit()
    return member, changed


def remove_member(session, actor, project_id, user_id):
    """True if the membership existed and is gone now; False if there was none (a repeat)."""
    project = project_for(session, actor, project_id, "project:member:remove", what="remove members")
    member = memberships.find(session, project.id, user_id) if is_id(user_id) else None
    if member is None:
        return False
    _enforce_role_change(actor, project, member.role, None)
    session.delete(member)
    session.commit()
    return True
