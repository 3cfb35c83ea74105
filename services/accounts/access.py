"""Finding the user an RPC acts on, and asking the policy about it: someone who may not see a
user is told it does not exist, exactly as for an id that names nobody (ids cannot be probed).
Admins are told the truth (Forbidden or NotFound)."""
from common import policy
from common.errors import NotFound
from services.accounts.models import User, is_id


def find_user(session, user_id):
    """The user or NotFound (also for ids that cannot be ids: not ints, beyond 64 bits)."""
    user = session.get(User, user_id) if is_id(user_id) else None
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def user_for(session, actor, action, user_id, what=None):
    """The user, if the policy lets the actor do `action` on it (target {"user_id": id})."""
    hidden = None if policy.is_admin(actor) else f"no user {user_id}"
    policy.enforce(actor, action, {"user_id": user_id}, hidden=hidden, what=what)
    return find_user(session, user_id)
