"""One-time links to set a password: for users an admin created without one, imported users,
and password resets. The token is shown once (in the link); only its sha256 is stored. A link
expires after PASSWORD_LINK_HOURS and works once; using one voids the user's other links.
"""
import datetime as dt
import secrets

from sqlalchemy import delete, select, update

from common.errors import InvalidInput
from services.accounts import passwords, tokens
from services.accounts.models import PasswordLink, User

SET_PASSWORD_PATH = "/set-password?token="
BAD_LINK = "this password link is unknown, used or expired; ask an administrator for a new one"


def link_url(settings, token):
    return f"{settings.public_url}{SET_PASSWORD_PATH}{token}"


def create_link(session, user_id, settings, now):
    """A new link for the user, in the session (the caller commits it with the change that
    calls for it). Returns {password_link, expires_at}."""
    token = secrets.token_urlsafe(32)
    expires_at = now + dt.timedelta(hours=settings.password_link_hours)
    session.add(PasswordLink(user_id=user_id, token_hash=tokens.token_hash(token), created_at=now,
                             expires_at=expires_at))
    return {"password_link": link_url(settings, token), "expires_at": expires_at}


def _bad_link():
    return InvalidInput(BAD_LINK, {"token": ["unknown, used or expired"]})


def set_password(session, hasher, token, password, now):
    """Anonymous: set the password of the link's user and use the link up. Returns the user.
    A repeat of the same request (the link used, the password already that one) returns the
    user unchanged. The hash is computed before the first write."""
    link = session.scalars(select(PasswordLink).where(
        PasswordLink.token_hash == tokens.token_hash(token))).first() if token else None
    if link is None or link.expires_at <= now:
        raise _bad_link()
    user = session.get(User, link.user_id)
    if user is None or user.status == "deleted":
        raise _bad_link()
    if link.used_at is not None:
        if hasher.verify(user.password_hash, password):
            return user
        raise _bad_link()
    passwords.check_policy(password, user.username)
    new_hash = hasher.hash(password)
    used = session.execute(update(PasswordLink).where(
        PasswordLink.id == link.id, PasswordLink.used_at.is_(None)).values(used_at=now)).rowcount
    if used != 1:  # a concurrent request used it first
        session.rollback()
        raise _bad_link()
    session.execute(delete(PasswordLink).where(PasswordLink.user_id == user.id,
                                               PasswordLink.id != link.id))
    user.password_hash = new_hash
    tokens.revoke_all(session, user.id, now)
    session.commit()
    return user


def delete_all_of(session, user_id):
    """Void every link of the user (a deletion), in the session, not committed."""
    session.execute(delete(PasswordLink).where(PasswordLink.user_id == user_id))
