"""The outbox of instance actions: rows staged in the transaction of the alarm state change or
the schedule run that asks for them, then claimed by one performer, performed and finished, or
tried again later. Every change is one compare-and-set UPDATE committed at once (as the mail
outbox, outbox.py), so no transaction is open while the instances service is asked.

At least once: a performer that dies after the instances service acted and before `finish`
committed leaves the row pending; when its claim ends the action is performed again, which the
instances service's idempotent RPCs make harmless. Finishing writes the outcome to the row's
origin in the same transaction: the alarm_history row's actions_result, or the schedule_runs
row's outcome."""
import datetime as dt
import json

from sqlalchemy import case, delete, update

from services.metrics import leases
from services.metrics.models import AlarmHistory, PendingAction, ScheduleRun

RESULT_MAX = 1000
ALARM, SCHEDULE = "alarm", "schedule"


def stage(session, key, origin, origin_id, instance_id, actor, action, now):
    """Adds one action to the caller's transaction (it commits). `key` names what asked for it
    (unique: a second stage of the same key fails that transaction's commit)."""
    session.add(PendingAction(key=key, origin=origin, origin_id=origin_id, instance_id=instance_id,
                              actor=json.dumps(actor), action=json.dumps(action), state="pending",
                              attempts=0, next_attempt_at=now, result="", created_at=now))


def cancel_pending(session, origin, origin_ids):
    """Drops the actions still pending of these origins (a deleted schedule's runs: `origin_ids`
    a list or a select of ids), in the caller's transaction. One a performer holds right now
    may be performed still; its finish then finds the row gone and records nothing."""
    session.execute(delete(PendingAction).where(PendingAction.origin == origin,
                                                PendingAction.origin_id.in_(origin_ids),
                                                PendingAction.state == "pending"))


def due(session, now, limit):
    """Ids of pending actions whose time has come and that no live claim holds, oldest first."""
    return leases.due(session, PendingAction, now, limit)


def claim(session, row_id, performer, now, lease_seconds):
    """The row for `performer` until now + lease, if still due and unclaimed; else None."""
    return leases.claim(session, PendingAction, row_id, performer, now, lease_seconds)


def _release(session, row, performer, **values):
    return leases.release(session, PendingAction, row.id, performer, **values)


def finish(session, row, performer, now, ok, text):
    """Marks the action done (ok) or given up (error) with `text`, and writes the outcome to its
    origin, in one transaction. False when the claim was lost: the new holder finishes it."""
    text = str(text)[:RESULT_MAX]
    if not _release(session, row, performer, state="ok" if ok else "error", result=text,
                    attempts=row.attempts + 1, done_at=now):
        session.rollback()
        return False
    if row.origin == ALARM:
        session.execute(update(AlarmHistory).where(AlarmHistory.id == row.origin_id).values(
            actions_result=case((AlarmHistory.actions_result == "", text),
                                else_=AlarmHistory.actions_result + "; " + text)))
    else:
        session.execute(update(ScheduleRun).where(ScheduleRun.id == row.origin_id).values(
            outcome="ok" if ok else "error", result=text, finished_at=now))
    session.commit()
    return True


def retry_later(session, row, performer, now, error, delay_seconds):
    _release(session, row, performer, attempts=row.attempts + 1, result=str(error)[:RESULT_MAX],
             next_attempt_at=now + dt.timedelta(seconds=delay_seconds))
    session.commit()


def prune(session, before):
    """Forget finished actions done before `before` (their outcome stays in their origin's
    history); pending ones stay however old."""
    result = session.execute(delete(PendingAction).where(PendingAction.state.in_(("ok", "error")),
                                                         PendingAction.done_at < before))
    session.commit()
    return result.rowcount

