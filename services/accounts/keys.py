"""SSH public keys: a user's own, optionally shared with one project whose members may then put
it on their instances. A key the actor may not see is reported exactly like a missing one."""
import itertools

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError

from common import policy
from common.errors import Conflict, InvalidInput, NotFound
from services.accounts import openssh, projects
from services.accounts.models import SshKey, is_id

NAME_MAX = 64


def _find_by_name(session, user_id, name):
    return session.scalars(
        select(SshKey).where(SshKey.user_id == user_id, SshKey.name == name)).first()


def _name_taken(name):
    return Conflict(f"you already have a key named {name!r}", {"name": ["already taken"]})


def _parse(public_key):
    try:
        return openssh.parse_public_key(public_key)
    except ValueError as exc:
        raise InvalidInput(f"invalid public key: {exc}", {"public_key": [str(exc)]}) from None


def _share_target(session, actor, project_id):
    """The project id a key is shared with, if the actor may share with it (key:share: a member;
    a project the actor may not see is NotFound)."""
    if project_id is None:
        return None
    return projects.project_for(session, actor, project_id, "key:share",
                                what="share keys with this project").id


def _same_key(key, parsed, project_id):
    return key.fingerprint == parsed.fingerprint and key.project_id == project_id


def add_key(session, actor, name, public_key, now, project_id=None):
    """Returns (key, created). The same name with the same key (and share) again returns the
    stored one (a redelivery); another key under that name is a Conflict."""
    policy.enforce(actor, "key:create")
    parsed = _parse(public_key)
    project_id = _share_target(session, actor, project_id)
    existing = _find_by_name(session, actor["id"], name)
    if existing is not None:
        if _same_key(existing, parsed, project_id):
            return existing, False
        raise _name_taken(name)
    key = SshKey(user_id=actor["id"], name=name, fingerprint=parsed.fingerprint,
                 public_key=parsed.line, project_id=project_id, created_at=now)
    session.add(key)
    try:
        session.commit()
    except IntegrityError:
        # A concurrent add with the same name won; it may be this very request redelivered.
        session.rollback()
        existing = _find_by_name(session, actor["id"], name)
        if existing is not None and _same_key(existing, parsed, project_id):
            return existing, False
        raise _name_taken(name) from None
    return key, True


def generate_key(session, actor, generate, name, key_type, now, project_id=None):
    """A new key pair: the public key is stored like an added one, the private key is returned
    (OpenSSH PEM) and never stored. Returns (key, private_key). `generate` is
    dependencies.KeyPairs' callable. Not repeatable: a second request for the name is a
    Conflict (the first private key cannot be shown again)."""
    policy.enforce(actor, "key:create")
    project_id = _share_target(session, actor, project_id)
    if _find_by_name(session, actor["id"], name) is not None:
        raise _name_taken(name)
    session.commit()  # nothing is written yet: no transaction waits on the generator
    private_key, public_line = generate(key_type, f"{actor['username']}@labcloud")
    key, created = add_key(session, actor, name, public_line, now, project_id)
    if not created:
        raise _name_taken(name)
    return key, private_key


def list_keys(session, actor):
    """The actor's own keys and those shared with the actor's projects: what the actor can put
    on instances (admins too: the list is not an inventory)."""
    policy.enforce(actor, "key:list")
    shared_with_me = policy.project_ids(actor)
    return list(session.scalars(
        select(SshKey).where(or_(SshKey.user_id == actor["id"],
                                 SshKey.project_id.in_(shared_with_me))).order_by(SshKey.id)))


def _target(key):
    return {"user_id": key.user_id, "project_id": key.project_id}


def _visible_key(session, actor, key_id):
    key = session.get(SshKey, key_id) if is_id(key_id) else None
    if key is None or not policy.allowed(actor, "key:get", _target(key)):
        return None
    return key


def get_key(session, actor, key_id):
    """Owner, admin, or a member of the project the key is shared with; else NotFound."""
    key = _visible_key(session, actor, key_id)
    if key is None:
        raise NotFound(f"no key {key_id}")
    return key


def delete_key(session, actor, key_id):
    """True if deleted; False if it is gone or hidden from the actor (indistinguishable on
    purpose). A member who sees a shared key but does not own it: Forbidden."""
    key = _visible_key(session, actor, key_id)
    if key is None:
        return False
    policy.enforce(actor, "key:delete", _target(key), what="delete this key")
    session.delete(key)
    session.commit()
    return True


def delete_all_of(session, user_id):
    """Every key of the user (a deletion), in the session, not committed."""
    session.execute(delete(SshKey).where(SshKey.user_id == user_id))


def hand_over(session, user, heir):
    """Give every key of `user` to `heir`, renaming those whose name the heir already uses
    (`<name>-<username>`, then `<name>-<username>-2`...). In the session, not committed."""
    taken = set(session.scalars(select(SshKey.name).where(SshKey.user_id == heir.id)))
    for key in session.scalars(select(SshKey).where(SshKey.user_id == user.id).order_by(SshKey.id)):
        key.name = _free_name(key.name, user.username, taken)
        key.user_id = heir.id
        taken.add(key.name)
    session.flush()


def _free_name(name, username, taken):
    """`name`, or `<name>-<username>`, `<name>-<username>-2`... (cut to fit NAME_MAX)."""
    if name not in taken:
        return name
    for n in itertools.count(1):
        suffix = f"-{username}" if n == 1 else f"-{username}-{n}"
        candidate = name[:NAME_MAX - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
