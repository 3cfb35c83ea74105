"""Bearer tokens (Keystone's): random, shown once, stored as sha256 hex, expiring after the
configured TTL, revocable one by one (logout) or all of a user's at once.

authenticate is every request's first RPC: two indexed queries, no hashing beyond one sha256.
"""
import datetime as dt
import hashlib
import secrets

from sqlalchemy import delete, select, update

from common.errors import Forbidden, Unauthorized
from services.accounts.access import user_for
from services.accounts.memberships import memberships_of
from services.accounts.models import Token, User, is_id

BAD_CREDENTIALS = "invalid username or password"
# Told only to someone who gave the right password.
STATUS_REFUSALS = {
    "pending": "this account awaits approval by an administrator",
    "rejected": "this account's sign-up was rejected",
    "suspended": "this account is suspended",
}


def token_hash(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _user_named(session, username):
    return session.scalars(select(User).where(User.username == username)).first()


def check_credentials(session, hasher, username, password):
    """The user if the password is right, else Unauthorized with one message for every case
    (no such user, deleted user, no password set, wrong password). Takes one verification's
    time in every case."""
    user = _user_named(session, username)
    if user is None or user.status == "deleted":
        hasher.burn_verify_time(password)
        raise Unauthorized(BAD_CREDENTIALS)
    if not hasher.verify(user.password_hash, password):
        raise Unauthorized(BAD_CREDENTIALS)
    return user


def refuse_unless_active(user):
    if user.status != "active":
        reason = STATUS_REFUSALS.get(user.status, f"this account is {user.status}")
        if user.status_reason:
            reason = f"{reason}: {user.status_reason}"
        raise Forbidden(reason)


def issue_token(session, hasher, username, password, now, ttl_seconds, address=None):
    """Returns {id, token, expires_at, user_id, username}. The status is checked only after the password, so it is
    told only to someone who knows the password. Every hash is computed before the first write:
    no write transaction waits on the hasher."""
    user = check_credentials(session, hasher, username, password)
    refuse_unless_active(user)
    new_hash = hasher.hash(password) if hasher.needs_rehash(user.password_hash) else None
    token = secrets.token_urlsafe(32)
    expires_at = now + dt.timedelta(seconds=int(ttl_seconds))
    # Expired tokens are useless, revoked ones too once they would have expired: drop this
    # user's on the way so the table does not grow forever.
    session.execute(delete(Token).where(Token.user_id == user.id, Token.expires_at <= now))
    if new_hash is not None:
        user.password_hash = new_hash
    row = Token(token_hash=token_hash(token), user_id=user.id, created_at=now,
                expires_at=expires_at, address=address or None)
    session.add(row)
    session.commit()
    # Who the token is for: a client (the CLI) needs its own user id for /users/{id}/... routes.
    return {"id": row.id, "token": token, "expires_at": expires_at, "user_id": user.id,
            "username": user.username}


def authenticate(session, token, now):
    """The actor {id, username, role, projects: [{id, role}]} behind a bearer token, or
    Unauthorized saying why."""
    if not isinstance(token, str) or not token:
        raise Unauthorized("a bearer token is required")
    row = session.execute(
        select(Token.expires_at, Token.revoked_at, User.id, User.username, User.role, User.status)
        .join(User, User.id == Token.user_id)
        .where(Token.token_hash == token_hash(token))).first()
    if row is None:
        raise Unauthorized("unknown token")
    if row.revoked_at is not None:
        raise Unauthorized("the token was revoked (logged out, password changed or account "
                           "suspended): log in again")
    if row.expires_at <= now:
        raise Unauthorized("the token has expired: log in again")
    if row.status != "active":
        raise Unauthorized("the account is no longer active")
    return {"id": row.id, "username": row.username, "role": row.role,
            "projects": memberships_of(session, row.id)}


def revoke_token(session, token, now):
    """Logout. True if the token is known (and now revoked, by this call or an earlier one):
    a repeated logout answers the same."""
    if not isinstance(token, str) or not token:
        return False
    return _revoke(session, Token.token_hash == token_hash(token), now)


def _revoke(session, which, now):
    known = session.scalars(select(Token.id).where(which)).first() is not None
    session.execute(update(Token).where(which, Token.revoked_at.is_(None)).values(revoked_at=now))
    session.commit()
    return known


def revoke_all(session, user_id, now):
    """Revoke every token of the user (suspension, deletion, password change). Not committed:
    it goes with the change that calls for it. Returns how many were live."""
    return session.execute(update(Token).where(Token.user_id == user_id, Token.revoked_at.is_(None))
                           .values(revoked_at=now)).rowcount


def list_tokens(session, actor, user_id, now):
    """The user's live tokens (self or admin; others: NotFound). Never the secret."""
    user_for(session, actor, "user:token:list", user_id, what="list these tokens")
    return list(session.scalars(
        select(Token).where(Token.user_id == user_id, Token.revoked_at.is_(None),
                            Token.expires_at > now).order_by(Token.id)))


def revoke_user_token(session, actor, user_id, token_id, now):
    """Revoke one of the user's tokens by id (self or admin). True if it exists."""
    user_for(session, actor, "user:token:revoke", user_id, what="revoke these tokens")
    if not is_id(token_id):
        return False
    return _revoke(session, (Token.id == token_id) & (Token.user_id == user_id), now)
