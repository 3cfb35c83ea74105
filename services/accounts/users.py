"""Users: sign-up, approval and lookup. Functions take a session and return ORM objects;
service.py turns them into payloads. Every change is a compare of the current status, so a
repeated request changes nothing and reports `changed=False` (no second event)."""
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from common import policy
from common.errors import Conflict, NotFound
from services.accounts import memberships, passwords
from services.accounts.models import Project, User, is_id


def find_by_username(session, username):
    return session.scalars(select(User).where(User.username == username)).first()


def _conflicting_field(session, username, email):
    if find_by_username(session, username) is not None:
        return "username"
    if session.scalars(select(User.id).where(User.email == email)).first() is not None:
        return "email"
    return None


def _conflict(field):
    return Conflict(f"that {field} is already taken", {field: ["already taken"]})


def signup(session, hasher, request, now):
    """Create a pending user. Returns (user, created).

    A redelivered sign-up (same username, email and password) returns the existing user instead
    of a Conflict, as every handler must be idempotent; anything else that clashes is a Conflict.
    """
    username, email, password = request["username"], request["email"].lower(), request["password"]
    existing = find_by_username(session, username)
    if (existing is not None and existing.email == email and existing.status == "pending"
            and hasher.verify(existing.password_hash, password)):
        return existing, False
    field = _conflicting_field(session, username, email)
    if field:
        raise _conflict(field)
    passwords.check_policy(password, username)
    user = User(username=username, email=email, full_name=request.get("full_name"),
                password_hash=hasher.hash(password), role="user", status="pending", created_at=now)
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        # Someone else signed up with the same name or email between the check and the insert.
        session.rollback()
        raise _conflict(_conflicting_field(session, username, email) or "username") from None
    return user, True


def find_user(session, user_id):
    """The user or NotFound (also for ids that cannot be ids)."""
    user = session.get(User, user_id) if is_id(user_id) else None
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def get_user(session, actor, user_id):
    """Self or admin. Others get NotFound, so user ids cannot be probed."""
    policy.enforce(actor, "user:get", {"user_id": user_id}, hidden=f"no user {user_id}")
    return find_user(session, user_id)


def list_users(session, actor, status=None):
    policy.enforce(actor, "user:list", what="list users")
    query = select(User).order_by(User.id)
    if status is not None:
        query = query.where(User.status == status)
    return list(session.scalars(query))


def _project(session, project_id):
    project = session.get(Project, project_id) if is_id(project_id) else None
    if project is None:
        raise NotFound(f"no project {project_id}", {"project": ["no such project"]})
    return project


def approve_user(session, actor, user_id, now, project_id=None):
    """Make a pending (or rejected) user active, joining `project_id` as member if given.
    Returns (user, changed): changed only when the status changed; approving an active user
    again only (re)joins the project."""
    policy.enforce(actor, "user:approve", what="approve users")
    user = find_user(session, user_id)
    project = _project(session, project_id) if project_id is not None else None
    if user.status not in ("pending", "rejected", "active"):
        raise Conflict(f"user {user.username} is {user.status}; only pending or rejected users "
                       "can be approved", {"status": [user.status]})
    changed = user.status != "active"
    if changed:
        user.status, user.approved_at, user.status_reason = "active", now, None
    if project is not None and memberships.find(session, project.id, user.id) is None:
        memberships.join(session, project.id, user.id, "member", now)
    session.commit()
    return user, changed
