"""Sign-up, approval and lookup of users. Functions take a session and return ORM objects;
service.py turns them into payloads."""
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from common import policy
from common.errors import Conflict, NotFound
from services.accounts import passwords
from services.accounts.models import User, is_id


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


def signup(session, username, email, password, now):
    """Create a pending user. Returns (user, created).

    A redelivered sign-up (same username, email and password) returns the existing user instead
    of a Conflict, as every handler must be idempotent; anything else that clashes is a Conflict.
    """
    email = email.lower()
    existing = find_by_username(session, username)
    if (existing is not None and existing.email == email
            and passwords.verify_password(existing.password_hash, password)):
        return existing, False
    field = _conflicting_field(session, username, email)
    if field:
        raise _conflict(field)
    user = User(username=username, email=email, password_hash=passwords.hash_password(password),
                role="user", status="pending", created_at=now)
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        # Someone else signed up with the same name or email between the check and the insert.
        session.rollback()
        raise _conflict(_conflicting_field(session, username, email) or "username") from None
    return user, True


def get_user(session, actor, user_id):
    """Self or admin. Others get NotFound, so user ids cannot be probed."""
    user = session.get(User, user_id) if is_id(user_id) else None
    if user is None or (user.id != actor["id"] and not policy.is_admin(actor)):
        raise NotFound(f"no user {user_id}")
    return user


def list_users(session, actor):
    policy.enforce(actor, "user:list", what="list users")
    return list(session.scalars(select(User).order_by(User.id)))


def approve_user(session, actor, user_id, now):
    """Make a user active. Returns (user, changed); approving an active user changes nothing."""
    policy.enforce(actor, "user:approve", what="approve users")
    user = get_user(session, actor, user_id)
    if user.status == "active":
        return user, False
    user.status = "active"
    user.approved_at = now
    session.commit()
    return user, True
