"""Scheduled actions' logic on a migrated database of each kind (SQLite, PostgreSQL), with a clock
the test sets: the next time of a cron expression in a zone, the claim that lets one of two
runners (two sessions: two replicas) perform a due time, missed slots run once, client tokens, and
the action outbox a run stages (action_outbox.py, action_runner.py with a stand-in instances
service: the one module's unit test; the service tests use the real one)."""
import datetime as dt

import pytest
from sqlalchemy.orm import sessionmaker

from common.db import make_engine
from common.errors import InvalidInput, NotFound
from services.metrics import action_outbox, action_runner, cron, schedules
from tests.databases import migrated_url

T0 = dt.datetime(2030, 1, 7, 6, 30)  # a Monday, 06:30 UTC (07:30 in Paris, winter time)
IID = "6c0b8f0e-6d2a-4d84-9a3a-7d0e1b1c2d3e"
ADA = {"id": 7, "username": "ada", "role": "user", "projects": [{"id": 3, "role": "member"}]}
INSTANCE = {"id": IID, "user_id": 7, "project": 3}
POLICY = action_runner.ActionPolicy(retry_base_seconds=5, retry_max_seconds=60, max_attempts=3, claim_seconds=30)


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request):
    url = migrated_url(request, request.param, "services.metrics")
    engine = make_engine(url)
    yield sessionmaker(bind=engine, expire_on_commit=False)
    engine.dispose()


def request(**fields):
    return dict({"instance": IID, "name": "", "action": "stop", "flavor": None, "confirm_restart": False,
                 "at": None, "cron": None, "timezone": "UTC", "client_token": None}, **fields)


def test_next_time_is_read_in_the_schedule_zone_with_its_daylight_saving():
    weekdays_8 = "0 8 * * 1-5"
    assert cron.next_time(weekdays_8, "Europe/Paris", T0) == dt.datetime(2030, 1, 7, 7, 0)   # UTC+1
    assert cron.next_time(weekdays_8, "Europe/Paris", dt.datetime(2030, 7, 1, 5, 0)) == dt.datetime(2030, 7, 1, 6, 0)
    assert cron.next_time(weekdays_8, "UTC", T0) == dt.datetime(2030, 1, 7, 8, 0)
    # Friday 08:00 Paris has passed: the next is Monday's.
    assert cron.next_time(weekdays_8, "Europe/Paris", dt.datetime(2030, 1, 11, 7, 0)) == dt.datetime(2030, 1, 14, 7, 0)
    assert cron.valid_expression("*/5 * * * *") and not cron.valid_expression("0 0 8 * * 1")
    assert not cron.valid_expression("61 * * * *") and not cron.valid_zone("Mars/Olympus")


def test_a_one_time_schedule_in_the_past_is_refused_naming_at(sessions):
    with pytest.raises(InvalidInput) as err:
        schedules.create(sessions(), ADA, request(at=T0 - dt.timedelta(seconds=1)), INSTANCE, T0)
    assert list(err.value.fields) == ["at"]


def test_two_runners_claim_one_due_time_once(sessions):
    one, two = sessions(), sessions()
    made = schedules.create(one, ADA, request(at=T0 + dt.timedelta(minutes=5)), INSTANCE, T0)
    assert made["state"] == "active" and made["next_run_at"] == T0 + dt.timedelta(minutes=5)
    later = T0 + dt.timedelta(minutes=6)
    [(sid, due_one)] = schedules.due(one, later)
    [(_, due_two)] = schedules.due(two, later)  # both replicas read the same due time
    first = schedules.claim_run(one, sid, due_one, later)
    second = schedules.claim_run(two, sid, due_two, later)
    assert first is not None and second is None
    assert schedules.due(one, later + dt.timedelta(days=1)) == []
    assert schedules.get(one, ADA, sid)["state"] == "done"
    [run] = schedules.history(one, ADA, sid)
    assert (run.outcome, run.action, run.due_at) == ("pending", "stop", T0 + dt.timedelta(minutes=5))
    [staged] = action_outbox.due(one, later, 10)
    assert action_outbox.due(two, later, 10) == [staged]


def test_missed_slots_run_once_and_the_next_is_after_now(sessions):
    session = sessions()
    made = schedules.create(session, ADA, request(cron="*/10 * * * *"), INSTANCE, T0)
    assert made["next_run_at"] == dt.datetime(2030, 1, 7, 6, 40)
    back = T0 + dt.timedelta(hours=3, minutes=5)  # the service was down for 18 slots
    [(sid, due_at)] = schedules.due(session, back)
    assert schedules.claim_run(session, sid, due_at, back) is not None
    assert schedules.due(session, back) == []
    assert schedules.get(session, ADA, sid)["next_run_at"] == dt.datetime(2030, 1, 7, 9, 40)
    assert len(schedules.history(session, ADA, sid)) == 1
    assert len(action_outbox.due(session, back, 100)) == 1


def test_a_client_token_makes_the_create_idempotent(sessions):
    session = sessions()
    first = schedules.create(session, ADA, request(cron="0 8 * * *", client_token="abc-1"), INSTANCE, T0)
    again = schedules.create(sessions(), ADA, request(cron="0 8 * * *", client_token="abc-1"), INSTANCE, T0)
    other = schedules.create(session, ADA, request(cron="0 8 * * *", client_token="abc-2"), INSTANCE, T0)
    assert again == first and other["id"] != first["id"]
    assert len(schedules.listing(session, ADA)) == 2


class Instances:
    """A stand-in for the instances service's RPC proxy: answers, refuses or is unreachable."""

    def __init__(self, behaviour):
        self.behaviour, self.calls = behaviour, []

    def stop_instance(self, actor, instance_id):
        self.calls.append(("stop", actor["id"], instance_id))
        return self.behaviour()


def run_staged(session, behaviour, at):
    instances = Instances(behaviour)
    done = action_runner.perform_due(session, instances, POLICY, "runner-a", lambda: at)
    return done, instances.calls


def claimed_run(session):
    made = schedules.create(session, ADA, request(at=T0 + dt.timedelta(minutes=1)), INSTANCE, T0)
    [(sid, due_at)] = schedules.due(session, T0 + dt.timedelta(minutes=1))
    schedules.claim_run(session, sid, due_at, T0 + dt.timedelta(minutes=1))
    return made["id"]


def test_a_performed_run_records_ok_as_its_creator(sessions):
    session = sessions()
    sid = claimed_run(session)
    done, calls = run_staged(session, lambda: {"state": "stopping"}, T0 + dt.timedelta(minutes=1))
    assert done == {"ok": 1} and calls == [("stop", 7, IID)]
    [run] = schedules.history(session, ADA, sid)
    assert (run.outcome, run.result) == ("ok", "stop: stopping")
    assert run_staged(session, lambda: {}, T0 + dt.timedelta(hours=1)) == ({}, [])  # nothing left


def test_an_unreachable_instances_service_is_retried_and_a_refusal_is_final(sessions):
    session = sessions()
    sid = claimed_run(session)
    at = T0 + dt.timedelta(minutes=1)

    def unreachable():
        raise TimeoutError("no answer")
    assert run_staged(session, unreachable, at)[0] == {"retry": 1}
    assert run_staged(session, unreachable, at)[0] == {}  # not before its backoff
    assert schedules.history(session, ADA, sid)[0].outcome == "pending"

    def refused():
        raise NotFound("no instance")
    assert run_staged(session, refused, at + dt.timedelta(seconds=5))[0] == {"error": 1}
    [run] = schedules.history(session, ADA, sid)
    assert run.outcome == "error" and "NotFound: no instance" in run.result


def test_a_performer_that_died_leaves_the_action_to_another_after_its_claim(sessions):
    session = sessions()
    claimed_run(session)
    at = T0 + dt.timedelta(minutes=1)
    [row_id] = action_outbox.due(session, at, 10)
    assert action_outbox.claim(session, row_id, "died", at, POLICY.claim_seconds) is not None
    assert run_staged(session, lambda: {"state": "stopped"}, at)[0] == {}  # still held
    later = at + dt.timedelta(seconds=POLICY.claim_seconds + 1)
    assert run_staged(session, lambda: {"state": "stopped"}, later)[0] == {"ok": 1}


def test_a_deleted_schedules_run_not_yet_performed_is_cancelled(sessions):
    """The run was staged (the instances service unreachable, say); the owner deletes the
    schedule before it is performed: the action is never performed."""
    session = sessions()
    sid = claimed_run(session)
    other = claimed_run(session)  # another schedule's run stays
    at = T0 + dt.timedelta(minutes=1)
    assert len(action_outbox.due(session, at, 10)) == 2
    assert schedules.delete_one(session, ADA, sid) is True
    done, calls = run_staged(session, lambda: {"state": "stopping"}, at)
    assert done == {"ok": 1} and len(calls) == 1
    assert schedules.history(session, ADA, other)[0].outcome == "ok"
