"""Bearer tokens: random, shown once, stored as sha256 hex, expiring after a fixed time."""
import datetime as dt
import hashlib
import secrets

from sqlalchemy import delete, select

from common.errors import Forbidden, Unauthorized
from services.accounts import passwords
from services.accounts.models import Token, User
from services.accounts.users import find_by_username

DEFAULT_TTL_HOURS = 12
BAD_CREDENTIALS = "invalid username or password"
STATUS_REFUSALS = {
    "pending": "this account awaits approval by an administrator",
    "disabled": "this account is disabled",
}


def token_hash(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_credentials(session, username, password):
    """The user if the password is right, else Unauthorized with one message for both cases."""
    user = find_by_username(session, username)
    if user is None:
        passwords.burn_verify_time(password)
        raise Unauthorized(BAD_CREDENTIALS)
    if not passwords.verify_password(user.password_hash, password):
        raise Unauthorized(BAD_CREDENTIALS)
    return user


def issue_token(session, username, password, now, ttl_hours=DEFAULT_TTL_HOURS):
    """Returns {token, expires_at}. The status is checked only after the password, so it is
    told only to someone who knows the password."""
    user = check_credentials(session, username, password)
    if user.status != "active":
        raise Forbidden(STATUS_REFUSALS.get(user.status, f"this account is {user.status}"))
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    token = secrets.token_urlsafe(32)
    expires_at = now + dt.timedelta(hours=float(ttl_hours))
    # Expired tokens are useless; drop this user's on the way so the table does not grow forever.
    session.execute(delete(Token).where(Token.user_id == user.id, Token.expires_at <= now))
    session.add(Token(token_hash=token_hash(token), user_id=user.id, created_at=now,
                      expires_at=expires_at))
    session.commit()
    return {"token": token, "expires_at": expires_at}


def authenticate(session, token, now):
    """The actor {id, username, role} behind a bearer token, or Unauthorized."""
    if not isinstance(token, str) or not token:
        raise Unauthorized("a bearer token is required")
    row = session.execute(
        select(Token, User).join(User, User.id == Token.user_id)
        .where(Token.token_hash == token_hash(token))).first()
    if row is None:
        raise Unauthorized("unknown token")
    stored, user = row
    if stored.expires_at <= now:
        raise Unauthorized("the token has expired")
    if user.status != "active":
        raise Unauthorized("the account is no longer active")
    return {"id": user.id, "username": user.username, "role": user.role}
