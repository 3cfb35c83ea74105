"""Scheduled instance actions in the metrics service's database: create, read, delete with the
alarms' rules (ownership.py), when each runs next (cron.py), and the claim that lets one runner
of several replicas perform a due time.

A schedule is due when `next_run_at` (naive UTC) has come. A runner claims a run with one
compare-and-set, `UPDATE schedules SET next_run_at=<next> WHERE id=? AND next_run_at=<due it
read>`, in the transaction that also inserts the run's history row ((schedule_id, due_at) unique)
and stages its action in the action outbox: only one runner's UPDATE matches, and a crash after
the commit leaves the action pending in the outbox, not lost. <next> is the cron's first time
after max(now, due): a schedule whose due times passed while the service was down runs once when
it is back, not once per missed slot. A one-time schedule's next is None: it is done."""
import json

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from common.errors import InvalidInput
from services.metrics import action_outbox, cron, ownership
from services.metrics.models import Schedule, ScheduleRun

KIND = "schedule"  # the policy's prefix (ownership.py)


def as_dict(schedule):
    values = {column.name: getattr(schedule, column.name) for column in Schedule.__table__.columns}
    del values["owner_actor"], values["client_token"]
    values["state"] = "active" if schedule.next_run_at is not None else "done"
    return values


def action_of(schedule):
    return {"type": schedule.action, "flavor": schedule.flavor, "confirm_restart": schedule.confirm_restart}


# ----- create, read, delete ------------------------------------------------------------------

def create(session, actor, request, instance, now):
    """`instance`: the instances service's record, fetched as the actor (NotFound already raised
    if the actor cannot see it). `at` must be in the future (400 naming `at`). Idempotent by
    `client_token`."""
    owners = ownership.creation_fields(actor, KIND, instance, [request["action"]])
    if request["at"] is not None:
        if request["at"] <= now:
            raise InvalidInput("the time is past", {"at": ["must be in the future"]})
        first = request["at"]
    else:
        first = cron.next_time(request["cron"], request["timezone"], now)
    default_name = request["action"] + (f" to flavor {request['flavor']}" if request["action"] == "resize" else "")
    schedule = Schedule(
        user_id=actor["id"], owner_actor=json.dumps(actor), **owners, instance_id=request["instance"], name=request["name"] or default_name, action=request["action"],
        flavor=request["flavor"], confirm_restart=request["confirm_restart"], at=request["at"],
        cron=request["cron"], timezone=request["timezone"], next_run_at=first, last_run_at=None,
        created_at=now, client_token=request["client_token"])
    return as_dict(ownership.add_once(session, schedule))


def get(session, actor, schedule_id):
    schedule = as_dict(ownership.visible(session, Schedule, schedule_id, actor, KIND))
    session.commit()
    return schedule


def listing(session, actor, instance_id=None):
    """The actor's schedules and those of the courses it manages; an admin's: all."""
    query = ownership.visible_rows(select(Schedule).order_by(Schedule.id), Schedule, actor, KIND)
    if instance_id is not None:
        query = query.where(Schedule.instance_id == instance_id)
    schedules = [as_dict(schedule) for schedule in session.scalars(query)]
    session.commit()
    return schedules


def _forget(session, schedule_ids):
    """The schedules, their history, and their runs not yet performed."""
    action_outbox.cancel_pending(session, action_outbox.SCHEDULE,
                                 select(ScheduleRun.id).where(ScheduleRun.schedule_id.in_(schedule_ids)))
    session.execute(delete(ScheduleRun).where(ScheduleRun.schedule_id.in_(schedule_ids)))
    session.execute(delete(Schedule).where(Schedule.id.in_(schedule_ids)))


def delete_one(session, actor, schedule_id):
    """False when it is gone already (a redelivered delete); True when this deleted it. Its history
    goes with it, and a run staged in the action outbox and not yet performed is cancelled."""
    if session.get(Schedule, schedule_id, populate_existing=True) is None:
        session.commit()
        return False
    ownership.visible(session, Schedule, schedule_id, actor, KIND, "delete")
    _forget(session, [schedule_id])
    session.commit()
    return True


def delete_of_instance(session, instance_id):
    """The schedules of a deleted instance go (a redelivered event finds none): their number."""
    ids = list(session.scalars(select(Schedule.id).where(Schedule.instance_id == instance_id)))
    if ids:
        _forget(session, ids)
    session.commit()
    return len(ids)


def history(session, actor, schedule_id):
    ownership.visible(session, Schedule, schedule_id, actor, KIND)
    rows = list(session.scalars(select(ScheduleRun).where(ScheduleRun.schedule_id == schedule_id)
                                .order_by(ScheduleRun.due_at.desc(), ScheduleRun.id.desc())))
    session.commit()
    return rows


# ----- running -------------------------------------------------------------------------------

def due(session, now, limit=100):
    """[(schedule id, the due time read)] of the schedules whose time has come, earliest first."""
    rows = session.execute(select(Schedule.id, Schedule.next_run_at)
                           .where(Schedule.next_run_at.is_not(None), Schedule.next_run_at <= now)
                           .order_by(Schedule.next_run_at, Schedule.id).limit(limit)).all()
    session.commit()
    return [(row.id, row.next_run_at) for row in rows]


def claim_run(session, schedule_id, due_at, now):
    """The ScheduleRun of `due_at` when this runner won it (its action is then staged, committed
    with the claim); None when another runner did, or the schedule is gone."""
    schedule = session.get(Schedule, schedule_id, populate_existing=True)
    if schedule is None or schedule.next_run_at != due_at:
        session.commit()
        return None
    following = None if schedule.cron is None else cron.next_time(schedule.cron, schedule.timezone,
                                                                 max(now, due_at))
    result = session.execute(update(Schedule)
                             .where(Schedule.id == schedule_id, Schedule.next_run_at == due_at)
                             .values(next_run_at=following, last_run_at=now))
    if result.rowcount != 1:
        session.rollback()
        return None
    run = ScheduleRun(schedule_id=schedule_id, due_at=due_at, action=schedule.action, outcome="pending",
                      result="", started_at=now)
    session.add(run)
    try:
        session.flush()
        action_outbox.stage(session, f"schedule.{schedule_id}.{run.id}", action_outbox.SCHEDULE, run.id,
                            schedule.instance_id, json.loads(schedule.owner_actor), action_of(schedule), now)
        session.commit()
    except IntegrityError:  # this due time ran already
        session.rollback()
        return None
    return run
