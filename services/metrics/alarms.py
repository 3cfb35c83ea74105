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
from common.errors import NotFound
from services.metrics import alarm_rules
from services.metrics.models import Alarm, AlarmHistory


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
    as the actor: NotFound already raised if the actor cannot see it), else None (a host)."""
    if instance is None:
        policy.enforce(actor, "alarm:create_host", what="put alarms on hosts")
        user_id, project_id = actor["id"], None
    else:
        target = {"user_id": instance["user_id"], "project_id": instance.get("project")}
        policy.enforce(actor, "alarm:create", target)
        user_id, project_id = actor["id"], instance.get("project")
    alarm = Alarm(
        user_id=user_id, owner_actor=json.dumps(actor), project_id=project_id,
        name=request["name"] or f"{request['metric']} {request['comparison']} {request['threshold']:g}",
        instance_id=request["instance"], host=request["host"], metric=request["metric"],
        statistic=request["statistic"], comparison=request["comparison"], threshold=request["threshold"],
        period=request["period"], evaluation_periods=request["evaluation_periods"],
        datapoints_to_alarm=request["datapoints_to_alarm"] or request["evaluation_periods"],
        missing_data=request["missing_data"], emails=json.dumps(request["emails"]),
        actions=json.dumps(request["actions"]), state=alarm_rules.INSUFFICIENT_DATA,
        state_reason="not evaluated yet", state_changed_at=now, evaluated_at=None, created_at=now)
    session.add(alarm)
    session.commit()
    return as_dict(alarm)


def _visible(session, actor, alarm_id, action):
    alarm = session.get(Alarm, alarm_id, populate_existing=True)
    if alarm is None:
        session.commit()
        raise NotFound(f"no alarm {alarm_id}")
    policy.enforce(actor, action, {"user_id": alarm.user_id, "project_id": alarm.project_id},
                   hidden=f"no alarm {alarm_id}")
    return alarm


def get(session, actor, alarm_id):
    alarm = as_dict(_visible(session, actor, alarm_id, "alarm:get"))
    session.commit()
    return alarm


def listing(session, actor, instance_id=None, host=None):
    """The actor's alarms, those on its managed courses' instances; an admin's: all. `host`: only
    that host's (admins: `alarm:create_host`, else Forbidden)."""
    policy.enforce(actor, "alarm:list")
    query = select(Alarm).order_by(Alarm.id)
    if host is not None:
        policy.enforce(actor, "alarm:create_host", what="see hosts' alarms")
        query = query.where(Alarm.host == host)
    if not policy.is_admin(actor):
        query = query.where(or_(Alarm.user_id == actor["id"],
                                Alarm.project_id.in_(policy.managed_project_ids(actor) or [-1])))
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
    alarm = _visible(session, actor, alarm_id, "alarm:delete")
    session.delete(alarm)
    session.execute(AlarmHistory.__table__.delete().where(AlarmHistory.alarm_id == alarm_id))
    session.commit()
    return True


def history(session, actor, alarm_id):
    _visible(session, actor, alarm_id, "alarm:get")
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


def claim(session, alarm, ref):
    """True when this evaluator won the period (evaluated_at moved from what it read to `ref`)."""
    result = session.execute(
        update(Alarm).where(Alarm.id == alarm.id,
                            Alarm.evaluated_at.is_(None) if alarm.evaluated_at is None
                            else Alarm.evaluated_at == alarm.evaluated_at)
        .values(evaluated_at=ref))
    session.commit()
    return result.rowcount == 1


def record(session, alarm, verdict, ref):
    """Stores the verdict of the evaluation claimed at `ref`. Returns the history row of a state
    change, or None (no change, or another evaluator got there: the compare-and-set on state and
    evaluated_at failed)."""
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
        session.commit()
    except IntegrityError:  # this change is recorded already
        session.rollback()
        return None
    return row


def set_actions_result(session, history_id, text):
    session.execute(update(AlarmHistory).where(AlarmHistory.id == history_id).values(actions_result=text[:4000]))
    session.commit()
