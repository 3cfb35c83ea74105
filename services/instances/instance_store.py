"""Every change of an instance's state, as a compare-and-set on the database row.

states.py says which transitions exist; this module applies them so that concurrent workers and
replicas can never both win: a move only happens if the row is still in one of the action's source
states (and, for host reports, only if the report is newer than the newest one recorded).
"""
from sqlalchemy import or_, select, update

from common.clock import utcnow
from services.instances import scheduler, states
from services.instances.models import Instance, InstanceAction

REASON_MAX = 2000


def move(session, instance_id, action, *, now=None, only_if_seq=None, report=None, also_if=None, commit=True,
         **values):
    """Apply `action` to the instance if its current state allows it. Returns the new state name,
    or None when the row was not in a source state (someone else moved it first).

    only_if_seq: the move also requires that the newest host report is still `only_if_seq`, so a
    newer report recorded meanwhile wins.
    report: (domain state, seq) of the host answer the move is based on, recorded with it, in the
    same statement; the move then also requires that no newer report was recorded.
    also_if: one more SQL condition checked in the same statement (so a fact read earlier, such as
    a host being quiet, is still true when the row moves).
    commit=False leaves the transaction open for one more write (the caller commits at once)."""
    now = now or utcnow()
    for to_state, from_states in _targets(action):
        query = update(Instance).where(Instance.id == instance_id, Instance.state.in_(from_states))
        if only_if_seq is not None:
            query = query.where(Instance.host_seq == only_if_seq)
        if also_if is not None:
            query = query.where(also_if)
        changes = dict(values, state=to_state, state_changed_at=now,
                       name_key=Instance.name if states.state(to_state).keeps_name else None)
        if report is not None:
            query = query.where(_older_than(report[1]))
            changes.update(host_state=report[0], host_seq=report[1])
        if to_state == "deleted":
            changes.setdefault("deleted_at", now)
        result = session.execute(query.values(**_bounded(changes)))
        if result.rowcount == 1:
            # The host's allocation counters change in the same transaction (a move into or out
            # of the states that hold host resources).
            scheduler.instance_moved(session, instance_id, from_states[0], to_state)
            if commit:
                session.commit()
            return to_state
    session.commit()
    return None


def _older_than(seq):
    """The recorded host report (if any) is older than `seq`."""
    return or_(Instance.host_seq.is_(None), Instance.host_seq < seq)


def _bounded(values):
    if values.get("reason"):
        values = dict(values, reason=values["reason"][:REASON_MAX])
    return values


def _targets(action):
    """[(to state, from states)]: the from states of one pair agree on holding host resources, so
    a move knows whether it took them or freed them."""
    targets = {}
    for source in states.sources(action):
        key = (states.target(action, source), states.state(source).holds_host_resources)
        targets.setdefault(key, []).append(source)
    return [(to_state, from_states) for (to_state, _holds), from_states in targets.items()]


def update_fields(session, instance_id, in_states, **values):
    """Change fields (not the state) while the instance is in one of `in_states`."""
    result = session.execute(update(Instance).where(
        Instance.id == instance_id, Instance.state.in_(in_states)).values(**_bounded(values)))
    session.commit()
    return result.rowcount == 1


def record_host_report(session, instance_id, domain_state, seq, **values):
    """Remember the host's report if it is newer than the newest one recorded. True if it was."""
    result = session.execute(
        update(Instance).where(Instance.id == instance_id, _older_than(seq))
        .values(host_seq=seq, host_state=domain_state, **values))
    session.commit()
    return result.rowcount == 1


def follow_host(session, instance_id, allowed_states=None, also_if=None):
    """Move a settled instance to where the newest host report puts it. `allowed_states` limits which
    current states may be corrected (events correct fewer than reconcile); `also_if`, an SQL
    condition the move also needs. Returns the new state or None."""
    session.expire_all()
    instance = session.get(Instance, instance_id)
    if instance is None or instance.host_state is None:
        return None
    if allowed_states is not None and instance.state not in allowed_states:
        return None
    action = states.observed_action(instance.host_state)
    to_state = action and states.target(action, instance.state)
    if to_state is None or to_state == instance.state:
        return None
    values = {}
    if to_state == "running":
        values.update(started_at=utcnow(), ssh_ready_at=None, started_seq=instance.host_seq, reason=None)
    elif to_state == "stopped":
        values.update(ssh_ready_at=None,
                      reason="the guest crashed" if instance.host_state == "crashed" else None)
    elif to_state == "error":
        values.update(reason=f"host {instance.host} has no domain for this instance")
    return move(session, instance_id, action, only_if_seq=instance.host_seq, also_if=also_if, **values)


# ----- the action log -------------------------------------------------------------------------

def start_action(session, instance_id, action, actor=None, message=None, commit=True):
    row = InstanceAction(instance_id=instance_id, action=action,
                         user_id=actor["id"] if actor else None,
                         username=actor["username"] if actor else None,
                         requested_at=utcnow(), result="in_progress", message=message)
    session.add(row)
    if commit:
        session.commit()
    return row


def finish_action(session, instance_id, action, result, message=None):
    """Close the open records of `action` (a redelivered saga finds them closed: no-op). Commits,
    also what a `move(..., commit=False)` left open."""
    values = {"finished_at": utcnow(), "result": result}
    if message:
        values["message"] = message[:REASON_MAX]
    session.execute(update(InstanceAction).where(
        InstanceAction.instance_id == instance_id, InstanceAction.action == action,
        InstanceAction.finished_at.is_(None)).values(**values))
    session.commit()


def record_finished_action(session, instance_id, action, result, message):
    """A record of something labcloud did by itself (reconcile repairs), finished as it is made."""
    row = start_action(session, instance_id, action, None, message, commit=False)
    row.finished_at, row.result = row.requested_at, result
    session.commit()
    return row


def list_actions(session, instance_id):
    return session.scalars(select(InstanceAction).where(InstanceAction.instance_id == instance_id)
                           .order_by(InstanceAction.id)).all()
