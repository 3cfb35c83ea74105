"""Users: sign-up, approval, an administrator's changes (create, reject, suspend, enable,
delete), passwords, lookup. Functions take a session (and a hasher where passwords are hashed)
and return ORM objects; service.py turns them into payloads. Every status change compares the
current status first, so a repeated request changes nothing and reports `changed=False` (no
second event)."""
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from common import policy
from common.errors import Conflict, InvalidInput
from services.accounts import keys, memberships, password_links, passwords, projects, tokens
from services.accounts.access import find_user, user_for
from services.accounts.models import UNUSABLE_PASSWORD, User, is_id


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
    _refuse_taken(session, username, email)
    passwords.check_policy(password, username)
    user = _insert_user(session, User(
        username=username, email=email, full_name=request.get("full_name"),
        password_hash=hasher.hash(password), role="user", status="pending", created_at=now))
    session.commit()
    return user, True


def _refuse_taken(session, username, email):
    field = _conflicting_field(session, username, email)
    if field:
        raise _conflict(field)


def _insert_user(session, user):
    """Add the new user (flushed, not committed); a username or email taken by someone else
    between the check and the insert is the same Conflict as one taken before."""
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise _conflict(_conflicting_field(session, user.username, user.email) or "username") from None
    return user


def get_user(session, actor, user_id):
    """Self or admin. Others get NotFound, so user ids cannot be probed."""
    return user_for(session, actor, "user:get", user_id)


def list_users(session, actor, status=None):
    policy.enforce(actor, "user:list", what="list users")
    query = select(User).order_by(User.id)
    if status is not None:
        query = query.where(User.status == status)
    return list(session.scalars(query))


def approve_user(session, actor, user_id, now, project_id=None):
    """Make a pending (or rejected) user active, joining `project_id` as member if given.
    Returns (user, changed): changed only when the status changed; approving an active user
    again only (re)joins the project."""
    policy.enforce(actor, "user:approve", what="approve users")
    user = find_user(session, user_id)
    project = projects.named_in_request(session, project_id) if project_id is not None else None
    changed = _move(session, user, "active", ("pending", "rejected"), "approve it",
                    approved_at=now, status_reason=None)
    if project is not None and memberships.find(session, project.id, user.id) is None:
        memberships.join(session, project.id, user.id, "member", now)
    session.commit()
    return user, changed


# ----- an administrator's changes -------------------------------------------------------------

def _refuse_self(actor, user, what):
    if user.id == actor["id"]:
        raise Conflict(f"you cannot {what} yourself", {"user": ["is you"]})


def _move(session, user, to_status, from_statuses, what, **values):
    """Compare-and-set on the status (one UPDATE ... WHERE status IN from_statuses, so of two
    workers or replicas doing the same change only one moves the user, and only that one
    announces it). True if this call moved it; False if the user already is in `to_status`;
    Conflict naming the status from any other. Not committed."""
    moved = session.execute(
        update(User).where(User.id == user.id, User.status.in_(from_statuses))
        .values(status=to_status, **values).execution_options(synchronize_session=False)
    ).rowcount == 1
    session.refresh(user)  # what the row holds now, whoever wrote it
    if moved:
        return True
    if user.status == to_status:
        return False
    raise Conflict(f"user {user.username} is {user.status}: cannot {what}", {"status": [user.status]})


def reject_user(session, actor, user_id, reason):
    """A pending sign-up is refused, with a reason the user is told. Returns (user, changed)."""
    policy.enforce(actor, "user:reject", what="reject sign-ups")
    user = find_user(session, user_id)
    changed = _move(session, user, "rejected", ("pending",), "reject it", status_reason=reason)
    session.commit()
    return user, changed


def suspend_user(session, actor, user_id, reason, now):
    """An active user can no longer log in; every token of theirs stops working at once.
    Returns (user, changed)."""
    policy.enforce(actor, "user:suspend", what="suspend users")
    user = find_user(session, user_id)
    _refuse_self(actor, user, "suspend")
    changed = _move(session, user, "suspended", ("active",), "suspend it", status_reason=reason)
    if changed:
        tokens.revoke_all(session, user.id, now)
    session.commit()
    return user, changed


def enable_user(session, actor, user_id):
    """A suspended user is active again (old tokens stay revoked). Returns (user, changed)."""
    policy.enforce(actor, "user:enable", what="re-enable users")
    user = find_user(session, user_id)
    changed = _move(session, user, "active", ("suspended",), "re-enable it", status_reason=None)
    session.commit()
    return user, changed


def _heir(session, user, transfer_to):
    """The active user who receives a deleted user's keys (and, in the instances service, its
    instances); InvalidInput naming transfer_to otherwise."""
    if transfer_to is None:
        return None
    heir = session.get(User, transfer_to) if is_id(transfer_to) else None
    if heir is None or heir.status != "active" or heir.id == user.id:
        raise InvalidInput(f"cannot transfer to user {transfer_to}",
                           {"transfer_to": ["must be another, active user"]})
    return heir


def delete_user(session, actor, user_id, transfer_to, now):
    """Status `deleted`, the row kept (the username stays taken, audit records keep naming
    someone). Tokens revoked, password and links void, memberships gone, keys deleted or handed
    to `transfer_to`. Returns (user, changed); deleting a deleted user changes nothing."""
    policy.enforce(actor, "user:delete", what="delete users")
    user = find_user(session, user_id)
    _refuse_self(actor, user, "delete")
    if user.status == "deleted":
        return user, False
    heir = _heir(session, user, transfer_to)
    if not _move(session, user, "deleted", ("pending", "active", "rejected", "suspended"),
                 "delete it", status_reason=None, password_hash=UNUSABLE_PASSWORD):
        return user, False
    tokens.revoke_all(session, user.id, now)
    password_links.delete_all_of(session, user.id)
    memberships.leave_all(session, user.id)
    if heir is None:
        keys.delete_all_of(session, user.id)
    else:
        keys.hand_over(session, user, heir)
    session.commit()
    return user, True


# ----- passwords ------------------------------------------------------------------------------

def change_password(session, hasher, actor, user_id, current_password, password, now):
    """The user's own change: needs the current password; every token of the user is revoked
    (log in again). A repeat (the password already is the new one) changes nothing. Hashes are
    computed before the first write. Returns True."""
    user = user_for(session, actor, "user:password:change", user_id, what="change this password")
    if not hasher.verify(user.password_hash, current_password):
        if hasher.verify(user.password_hash, password):
            return True
        raise InvalidInput("the current password is not right",
                           {"current_password": ["is not right"]})
    passwords.check_policy(password, user.username)
    user.password_hash = hasher.hash(password)
    tokens.revoke_all(session, user.id, now)
    session.commit()
    return True


def reset_password(session, actor, user_id, settings, now):
    """Admin: the user's password stops working, every token of theirs is revoked, and a
    one-time link to choose a new one is made. Returns (user, {password_link, expires_at}).
    A repeat makes another link; each works until one of them is used or they expire."""
    policy.enforce(actor, "user:password:reset", what="reset passwords")
    user = find_user(session, user_id)
    if user.status == "deleted":
        raise Conflict(f"user {user.username} is deleted", {"status": [user.status]})
    user.password_hash = UNUSABLE_PASSWORD
    tokens.revoke_all(session, user.id, now)
    link = password_links.create_link(session, user.id, settings, now)
    session.commit()
    return user, link


# ----- creation by an administrator -----------------------------------------------------------

def _same_user(existing, username, email):
    return existing is not None and existing.username == username and existing.email == email


def create_user(session, hasher, actor, request, settings, now):
    """An active user made by an admin, in `project` (as `role`) if given. Without a password
    the user gets a one-time link to set one. Returns (user, link or None, created).

    A repeat (same username and email, a user still without a password of its own, or with the
    password given) returns that user (with a fresh link if it has no password yet) and
    created=False; any other clash is a Conflict naming the field."""
    policy.enforce(actor, "user:create", what="create users")
    username, email, password = request["username"], request["email"].lower(), request.get("password")
    project_id = request.get("project")
    project = projects.named_in_request(session, project_id) if project_id is not None else None
    existing = find_by_username(session, username)
    if _same_user(existing, username, email) and existing.status == "active":
        if password is None and existing.password_hash == UNUSABLE_PASSWORD:
            link = password_links.create_link(session, existing.id, settings, now)
            session.commit()
            return existing, link, False
        if password is not None and hasher.verify(existing.password_hash, password):
            return existing, None, False
    _refuse_taken(session, username, email)
    if password is not None:
        passwords.check_policy(password, username)
    password_hash = hasher.hash(password) if password is not None else UNUSABLE_PASSWORD
    user = _insert_user(session, User(
        username=username, email=email, full_name=request.get("full_name"),
        password_hash=password_hash, role="user", status="active", created_at=now, approved_at=now))
    if project is not None:
        memberships.join(session, project.id, user.id, request.get("role") or "member", now)
    link = password_links.create_link(session, user.id, settings, now) if password is None else None
    session.commit()
    return user, link, True
