"""SSH public keys per user. Someone else's key is reported exactly like a missing one."""
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from common import policy
from common.errors import Conflict, InvalidInput, NotFound
from services.accounts import openssh
from services.accounts.models import SshKey, is_id


def _find_by_name(session, user_id, name):
    return session.scalars(
        select(SshKey).where(SshKey.user_id == user_id, SshKey.name == name)).first()


def _name_taken(name):
    return Conflict(f"you already have a key named {name!r}", {"name": ["already taken"]})


def add_key(session, actor, name, public_key, now):
    """Returns (key, created). The same name with the same key again returns the stored one."""
    try:
        parsed = openssh.parse_public_key(public_key)
    except ValueError as exc:
        raise InvalidInput(f"invalid public key: {exc}", {"public_key": [str(exc)]}) from None
    existing = _find_by_name(session, actor["id"], name)
    if existing is not None:
        if existing.fingerprint == parsed.fingerprint:
            return existing, False
        raise _name_taken(name)
    key = SshKey(user_id=actor["id"], name=name, fingerprint=parsed.fingerprint,
                 public_key=parsed.line, created_at=now)
    session.add(key)
    try:
        session.commit()
    except IntegrityError:
        # A concurrent add with the same name won; it may be this very request redelivered.
        session.rollback()
        existing = _find_by_name(session, actor["id"], name)
        if existing is not None and existing.fingerprint == parsed.fingerprint:
            return existing, False
        raise _name_taken(name) from None
    return key, True


def list_keys(session, actor):
    """The actor's own keys, admins included: the list is what they can put on their instances."""
    return list(session.scalars(
        select(SshKey).where(SshKey.user_id == actor["id"]).order_by(SshKey.id)))


def _visible_key(session, actor, key_id):
    key = session.get(SshKey, key_id) if is_id(key_id) else None
    if key is None or (key.user_id != actor["id"] and not policy.is_admin(actor)):
        return None
    return key


def get_key(session, actor, key_id):
    key = _visible_key(session, actor, key_id)
    if key is None:
        raise NotFound(f"no key {key_id}")
    return key


def delete_key(session, actor, key_id):
    """True if deleted; False if it is gone, or not the actor's (indistinguishable on purpose)."""
    key = _visible_key(session, actor, key_id)
    if key is None:
        return False
    session.delete(key)
    session.commit()
    return True
