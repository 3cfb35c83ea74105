"""The instances of a user the accounts service deleted: handed over to the user named to take them,
or deleted by labcloud itself.

Both are safe to run again for the same user (the event is delivered at least once): a transfer
moves only instances the deleted user still owns, a delete marks only instances no delete is under
way for, so a redelivery finds nothing left to do. (A crash between marking an instance `deleting`
and dispatching its delete saga is repaired by reconcile, which runs unfinished deletes again.)
"""
from sqlalchemy import case, select, update

from services.instances import instance_store, lifecycle, states
from services.instances.models import Instance

NAME_MAX = 63


def transfer_instances(session, user_id, to_user_id, username):
    """Every live instance of `user_id` becomes `to_user_id`'s, renamed "<name>-<first 6 of its
    id>" where the new owner already holds its name; each gets a `transfer` action log entry.
    Returns the ids transferred."""
    transferred = []
    for instance in _live_instances_of(session, user_id):
        name = next(n for n in _names_to_try(instance) if not _name_held(session, to_user_id, n))
        message = f"its owner {username} (user {user_id}) was deleted; now owned by user {to_user_id}"
        if name != instance.name:
            message += f", renamed from {instance.name} (the new owner has an instance of that name)"
        # Compare-and-set: only while the deleted user still owns it and it is live.
        changed = session.execute(
            update(Instance).where(Instance.id == instance.id, Instance.user_id == user_id,
                                   Instance.state.in_(states.LIVE))
            .values(user_id=to_user_id, name=name,
                    name_key=case((Instance.state.in_(states.KEEPS_NAME), name), else_=None)))
        if changed.rowcount == 1:
            instance_store.record_finished_action(session, instance.id, "transfer", "success", message)
            transferred.append(instance.id)
        else:
            session.commit()
    return transferred


def delete_instances(session, user_id, username):
    """A delete of every instance of `user_id` no delete is under way for, asked by labcloud itself.
    Returns the instances this call moved (`deleting`: the caller dispatches their delete sagas;
    `deleted`: nothing was made yet)."""
    message = f"its owner {username} (user {user_id}) was deleted"
    return [instance for instance in _live_instances_of(session, user_id)
            if lifecycle.mark_deleted(session, instance, None, message) is not None]


def _live_instances_of(session, user_id):
    return session.scalars(select(Instance).where(Instance.user_id == user_id, Instance.state.in_(states.LIVE))
                           .order_by(Instance.created_at, Instance.id)).all()


def _names_to_try(instance):
    """Its name; on a clash "<name>-<first 6 of its id>"; the whole id as the last resort."""
    yield instance.name
    yield f"{instance.name[:NAME_MAX - 7]}-{instance.id[:6]}"
    yield f"{instance.name[:NAME_MAX - 37]}-{instance.id}"


def _name_held(session, user_id, name):
    return session.scalars(select(Instance.id).where(
        Instance.user_id == user_id, Instance.name_key == name)).first() is not None
