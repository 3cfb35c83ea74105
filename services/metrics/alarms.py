"""Alarms in the metrics service's database: create, read, delete with the policy's rules, and the
bookkeeping of their evaluation (alarm_rules.py judges): which alarms are due, the compare-and-set
that lets one evaluator (of several replicas, or the timer and a sample batch) judge a period,
and the state change recorded with its history row in one transaction.

Times: an evaluation's reference time `ref` (naive UTC) is the moment whose whole periods are
judged: a sample batch's time, or the timer's clock minus a grace for late samples. An alarm is
due when a period boundary lies between its evaluated_at and `ref`: each alarm is judged once per
period, whichever evaluator comes first."""
import calendar
import datetime as dt
import json

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from common import policy
from services.metrics import action_outbox, alarm_rules, ownership
from services.metrics.models import Alarm, AlarmHistory

KIND = "alarm"  # the policy's prefix (ownership.py)


def unix(value):
    return calendar.timegm(value.utctimetuple()) + value.microsecond / 1e6


def from_unix(seconds):
    return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=float(seconds))


def rule_of(alarm):
    return alarm_rules.Rule(alarm.statistic, alarm.comparison, alarm.threshold, alarm.period,
                            alarm.evaluation_periods, alarm.datapoints_to_alarm, alarm.missing_data)


def as_dict(alarm):
    values = {column.name: getattr(alarm, column.name) for column in Alarm.__table__.columns}
    values["emails"], values["actions"] = json.loads(alarm.emails), json.loads(alarm.actions)
    del values["owner_actor"]
    return values


def owner_actor(alarm):
    return json.loads(alarm.owner_actor)


# ----- create, read, delete ------------------------------------------------------------------

def create(session, actor, request, instance, now):
    """`instance`: the instances service's record when the alarm is on one (the caller fetched it
    as the actor: NotFound already raised if the actor cannot see it), else None (a host).
    Idempotent by `client_token` (ownership.add_once)."""
    if instance is None:
        policy.enforce(actor, "alarm:create_host", what="put alarms on hosts")
        owners = {"project_id": None, "instance_owner_id": None}
    else:
        owners = ownership.creation_fields(actor, KIND, instance,
                                           sorted({action["type"] for action in request["actions"]}))
    alarm = Alarm(
        user_id=actor["id"], owner_actor=json.dumps(actor), **owners,
        name=request["name"] or f"{request['metric']} {request['comparison']} {request['threshold']:g}",
        instance_id=request["instance"], host=request["host"], metric=request["metric"],
        statistic=request["statistic"], comparison=request["comparison"], threshold=request["threshold"],
        period=request["period"], evaluation_periods=request["evaluation_periods"],
        datapoints_to_alarm=request["datapoints_to_alarm"] or request["evaluation_periods"],
        missing_data=request["missing_data"], emails=json.dumps(request["emails"]),
        actions=json.dumps(request["actions"]), state=alarm_rules.INSUFFICIENT_DATA,
        state_reason="not evaluated yet", state_changed_at=now, evaluated_at=None, created_at=now,
        client_token=request["client_token"])
    return as_dict(ownership.add_once(session, alarm))


def get(session, actor, alarm_id):
    alarm = as_dict(ownership.visible(session, Alarm, alarm_id, actor, KIND))
    session.commit()
    return alarm


def listing(session, actor, instance_id=None, host=None):
    """The actor's alarms, those on its managed courses' instances; an admin's: all. `host`: only
    that host's (admins: `alarm:create_host`, else Forbidden)."""
    query = ownership.visible_rows(select(Alarm).order_by(Alarm.id), Alarm, actor, KIND)
    if host is not None:
        policy.enforce(actor, "alarm:create_host", what="see hosts' alarms")
        query = query.where(Alarm.host == host)
    if instance_id is not None:
        query = query.where(Alarm.instance_id == instance_id)
    alarms = [as_dict(alarm) for alarm in session.scalars(query)]
    session.commit()
    return alarms


def delete(session, actor, alarm_id):
    """False when the alarm is gone already (a redelivered delete); True when this deleted it."""
    if session.get(Alarm, alarm_id, populate_existing=True) is None:
        session.commit()
        return False
    alarm = ownership.visible(session, Alarm, alarm_id, actor, KIND, "delete")
    session.delete(alarm)
    session.execute(AlarmHistory.__table__.delete().where(AlarmHistory.alarm_id == alarm_id))
    session.commit()
    return True


def delete_of_instance(session, instance_id):
    """The alarms of a deleted instance go with their history (a redelivered event finds none):
    their number."""
    ids = list(session.scalars(select(Alarm.id).where(Alarm.instance_id == instance_id)))
    if ids:
        session.execute(AlarmHistory.__table__.delete().where(AlarmHistory.alarm_id.in_(ids)))
        session.execute(Alarm.__table__.delete().where(Alarm.id.in_(ids)))
    session.commit()
    return len(ids)


def history(session, actor, alarm_id):
    ownership.visible(session, Alarm, alarm_id, actor, KIND)
    rows = list(session.scalars(select(AlarmHistory).where(AlarmHistory.alarm_id == alarm_id)
                                .order_by(AlarmHistory.changed_at.desc(), AlarmHistory.id.desc())))
    session.commit()
    return rows


# ----- evaluation bookkeeping ----------------------------------------------------------------

def is_due(alarm, ref):
    if alarm.evaluated_at is None:
        return True
    return int(unix(ref)) // alarm.period > int(unix(alarm.evaluated_at)) // alarm.period


def due(session, ref, instance_ids=None, host=None):
    """Alarms with a period boundary since their last evaluation: all of them (the timer), or
    those on `instance_ids` / `host` (a sample batch: one indexed query)."""
    query = select(Alarm)
    if instance_ids is not None:
        clauses = [Alarm.instance_id.in_(instance_ids)] if instance_ids else []
        if host is not None:
            clauses.append(Alarm.host == host)
        if not clauses:
            return []
        query = query.where(or_(*clauses))
    alarms = [alarm for alarm in session.scalars(query) if is_due(alarm, ref)]
    for alarm in alarms:
        session.expunge(alarm)  # read-only snapshots: the evaluator compares-and-sets against them
    session.commit()
    return alarms


def claim_all(session, alarms, ref):
    """The alarms of `alarms` whose period this evaluator won (evaluated_at moved from what it
    read to `ref`), in one transaction: a batch's judgements commit once, not once each."""
    won = []
    for alarm in alarms:
        result = session.execute(
            update(Alarm).where(Alarm.id == alarm.id,
                                Alarm.evaluated_at.is_(None) if alarm.evaluated_at is None
                                else Alarm.evaluated_at == alarm.evaluated_at)
            .values(evaluated_at=ref))
        if result.rowcount == 1:
            won.append(alarm)
    session.commit()
    return won


def claim(session, alarm, ref):
    """True when this evaluator won the alarm's period (claim_all of one)."""
    return bool(claim_all(session, [alarm], ref))


def record_unchanged(session, judged, ref):
    """The verdicts [(alarm, verdict)] that keep their alarm's state (most of them): reason and
    value stored in one transaction, each under the same compare-and-set as record()."""
    for alarm, verdict in judged:
        session.execute(update(Alarm).where(Alarm.id == alarm.id, Alarm.state == alarm.state,
                                            Alarm.evaluated_at == ref)
                        .values(state_reason=verdict.reason[:1000], state_value=verdict.value))
    session.commit()


def record(session, alarm, verdict, ref, effects):
    """Stores the verdict of the evaluation claimed at `ref`. On a state change, its history row
    and what `effects(row)` adds to the session (the mail and instance actions it asks for, into
    their outboxes) are one transaction: none is lost to a crash, none stored twice. Returns the
    history row of a state change, or None (no change, or another evaluator got there: the
    compare-and-set on state and evaluated_at failed)."""
    changed = verdict.state != alarm.state
    values = {"state_reason": verdict.reason[:1000], "state_value": verdict.value}
    if changed:
        values.update(state=verdict.state, state_changed_at=ref)
    result = session.execute(update(Alarm).where(Alarm.id == alarm.id, Alarm.state == alarm.state,
                                                 Alarm.evaluated_at == ref).values(**values))
    if result.rowcount != 1 or not changed:
        session.commit()
        return None
    row = AlarmHistory(alarm_id=alarm.id, old_state=alarm.state, new_state=verdict.state,
                       reason=verdict.reason[:1000], value=verdict.value, changed_at=ref, actions_result="")
    session.add(row)
    try:
        session.flush()  # the row's id keys its mail and actions
        effects(row)
        session.commit()
    except IntegrityError:  # this change is recorded already
        session.rollback()
        return None
    except BaseException:
        session.rollback()
        raise
    return row


def stage_actions(session, alarm, change, now):
    """Adds the instance actions of `change` (those whose `on` is its new state) to the action
    outbox, keyed by the change and the action's place in the alarm's list."""
    if alarm.instance_id is None:
        return
    for index, action in enumerate(json.loads(alarm.actions)):
        if action.get("on", alarm_rules.ALARM) != change.new_state:
            continue
        action_outbox.stage(session, f"alarm.{change.id}.{index}", action_outbox.ALARM, change.id,
                            alarm.instance_id, owner_actor(alarm),
                            {key: action.get(key) for key in ("type", "flavor", "confirm_restart")}, now)
