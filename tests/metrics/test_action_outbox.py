"""An alarm's state change and the actions it asks for are one transaction (alarms.record with
the effects that stage them, action_outbox.py), on a migrated SQLite database: committed together,
or neither when staging fails; staged twice for one change, stored once; left pending until a
performer finishes them, which writes the outcome to the change's history row."""
import datetime as dt
import json

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from common.db import make_engine
from services.metrics import action_outbox, alarm_rules, alarms
from services.metrics.models import Alarm, AlarmHistory, PendingAction

T0 = dt.datetime(2030, 1, 7, 6, 30)
IID = "6c0b8f0e-6d2a-4d84-9a3a-7d0e1b1c2d3e"
ADA = {"id": 7, "username": "ada", "role": "user", "projects": [{"id": 3, "role": "member"}]}
BUSY = alarm_rules.Verdict(alarm_rules.ALARM, "2 of 2 breach", 93.0)


@pytest.fixture
def session(migrated_database):
    engine = make_engine(migrated_database("services.metrics"))
    yield sessionmaker(bind=engine, expire_on_commit=False)()
    engine.dispose()


def claimed_alarm(session, actions):
    request = {"name": "busy", "instance": IID, "host": None, "metric": "cpu_percent", "statistic": "average",
               "comparison": "GreaterThanThreshold", "threshold": 50.0, "period": 10, "evaluation_periods": 2,
               "datapoints_to_alarm": 2, "missing_data": "missing", "emails": [], "actions": actions,
               "client_token": None}
    made = alarms.create(session, ADA, request, {"id": IID, "user_id": 7, "project": 3}, T0)
    alarm = session.get(Alarm, made["id"])
    session.expunge(alarm)
    assert alarms.claim(session, alarm, T0)
    return alarm


def test_a_change_and_its_actions_commit_together(session):
    alarm = claimed_alarm(session, [{"type": "stop"}, {"type": "resize", "flavor": 2, "on": "OK"}])
    change = alarms.record(session, alarm, BUSY, T0,
                           lambda row: alarms.stage_actions(session, alarm, row, T0))
    [row] = session.scalars(select(PendingAction)).all()  # only the action whose `on` is ALARM
    assert (row.state, row.origin, row.origin_id, row.key) == ("pending", "alarm", change.id, f"alarm.{change.id}.0")
    assert json.loads(row.action)["type"] == "stop" and json.loads(row.actor)["id"] == 7
    held = action_outbox.claim(session, row.id, "performer", T0, 30)
    assert action_outbox.finish(session, held, "performer", T0, True, "stop: stopping")
    assert session.get(AlarmHistory, change.id, populate_existing=True).actions_result == "stop: stopping"
    assert action_outbox.due(session, T0 + dt.timedelta(days=1), 10) == []
    assert action_outbox.prune(session, T0) == 0 and action_outbox.prune(session, T0 + dt.timedelta(days=1)) == 1
    assert session.get(AlarmHistory, change.id, populate_existing=True).actions_result == "stop: stopping"


def test_a_failure_while_staging_keeps_neither_the_change_nor_its_actions(session):
    alarm = claimed_alarm(session, [{"type": "stop"}])

    def crash(row):
        alarms.stage_actions(session, alarm, row, T0)
        raise RuntimeError("the process died here")
    with pytest.raises(RuntimeError):
        alarms.record(session, alarm, BUSY, T0, crash)
    assert session.scalars(select(PendingAction)).all() == []
    assert session.scalars(select(AlarmHistory)).all() == []
    assert session.get(Alarm, alarm.id, populate_existing=True).state == alarm_rules.INSUFFICIENT_DATA


def test_an_action_staged_twice_for_one_change_is_stored_once(session):
    alarm = claimed_alarm(session, [{"type": "stop"}])
    change = alarms.record(session, alarm, BUSY, T0, lambda row: alarms.stage_actions(session, alarm, row, T0))
    alarms.stage_actions(session, alarm, change, T0)
    with pytest.raises(IntegrityError):  # the unique key
        session.commit()
    session.rollback()
    assert len(session.scalars(select(PendingAction)).all()) == 1
