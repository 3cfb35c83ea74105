"""The index of alarms a sample batch may have to judge (services/metrics/alarm_index.py) on a real
SQLite database of the metrics service, alarms made and judged with alarms.py as the service does;
a clock the test moves decides when the index reloads."""
import datetime as dt
import uuid

import pytest
from sqlalchemy import update

from common.db import make_engine, session_scope
from common.schemas import load
from services.metrics import alarms
from services.metrics.alarm_index import AlarmIndex
from services.metrics.models import Alarm
from services.metrics.schemas import AlarmCreateRequest

ADMIN = {"id": 1, "username": "admin", "role": "admin", "projects": []}
T0 = dt.datetime(2026, 1, 1, 0, 0, 0)  # a period boundary of 60 s alarms
MAX_AGE = 5


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def session(migrated_database):
    engine = make_engine(migrated_database("services.metrics"))
    with session_scope(engine) as session:
        yield session
    engine.dispose()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def index(clock):
    return AlarmIndex(MAX_AGE, clock)


def make_alarm(session, instance_id=None, host=None, period=60):
    target = {"instance": instance_id} if instance_id else {"host": host}
    request = load(AlarmCreateRequest, {**target, "metric": "cpu_percent" if instance_id else "loadavg",
                                        "comparison": "GreaterThanThreshold", "threshold": 1,
                                        "period": period})
    instance = {"user_id": 1, "project": None} if instance_id else None
    return alarms.create(session, ADMIN, request, instance, T0)


def at(seconds):
    return T0 + dt.timedelta(seconds=seconds)


def judge(session, index, ref, instance_ids, host):
    """What the service does with a batch: the candidates' due alarms claimed at `ref`."""
    candidates, due_host = index.candidates(session, ref, instance_ids, host)
    judged = []
    if candidates or due_host is not None:
        due = alarms.due(session, ref, instance_ids=candidates, host=due_host)
        index.judged_except(candidates, due_host, ref, {alarm.id for alarm in due})
        for alarm in due:
            taken = index.take(alarm.id, ref)
            if taken is None:
                continue
            if alarms.claim(session, alarm, ref):
                judged.append(alarm.id)
            else:
                taken.give_back()
    return candidates, due_host, judged


def test_a_batch_without_alarms_has_no_candidates(session, index):
    make_alarm(session, instance_id=str(uuid.uuid4()))
    assert index.candidates(session, at(5), [str(uuid.uuid4())], "h1") == ([], None)


def test_candidates_once_per_period_as_alarms_due_says(session, index):
    vm, other = str(uuid.uuid4()), str(uuid.uuid4())
    on_vm, on_host = make_alarm(session, instance_id=vm), make_alarm(session, host="h1")
    # Never judged: due at once.
    assert judge(session, index, at(5), [vm, other], "h1") == ([vm], "h1", [on_vm["id"], on_host["id"]])
    # The rest of that period: nothing to ask the database.
    for seconds in range(10, 60, 5):
        assert index.candidates(session, at(seconds), [vm, other], "h1") == ([], None)
    # The next period: due again, and judged.
    assert judge(session, index, at(60), [vm, other], "h1") == ([vm], "h1", [on_vm["id"], on_host["id"]])
    assert index.candidates(session, at(65), [vm], "h1") == ([], None)


def test_an_alarm_made_elsewhere_is_seen_after_max_age_or_invalidate(session, index, clock):
    vm = str(uuid.uuid4())
    assert index.candidates(session, at(5), [vm], None) == ([], None)
    make_alarm(session, instance_id=vm)  # by another replica: this index does not know yet
    assert index.candidates(session, at(5), [vm], None) == ([], None)
    clock.now += MAX_AGE
    assert index.candidates(session, at(5), [vm], None) == ([vm], None)

    second = str(uuid.uuid4())
    make_alarm(session, instance_id=second)  # by this container: it invalidates
    index.invalidate()
    assert index.candidates(session, at(5), [second], None) == ([second], None)


def test_a_deleted_alarm_leaves_the_index_on_reload(session, index):
    vm = str(uuid.uuid4())
    made = make_alarm(session, instance_id=vm)
    assert index.candidates(session, at(5), [vm], None) == ([vm], None)
    assert alarms.delete(session, ADMIN, made["id"])
    index.invalidate()
    assert index.candidates(session, at(5), [vm], None) == ([], None)


def test_judged_elsewhere_is_a_false_candidate_once(session, index, clock):
    """The timer (or another replica) judged the alarm: the index still thinks it due, the
    database says not; after that batch it is not asked again this period."""
    vm = str(uuid.uuid4())
    made = make_alarm(session, instance_id=vm)
    assert index.candidates(session, at(5), [], None) == ([], None)  # loaded while never judged
    session.execute(update(Alarm).where(Alarm.id == made["id"]).values(evaluated_at=at(5)))
    session.commit()
    assert judge(session, index, at(10), [vm], None) == ([vm], None, [])
    assert index.candidates(session, at(15), [vm], None) == ([], None)


def test_an_older_batch_does_not_move_the_index_back(session, index):
    vm = str(uuid.uuid4())
    make_alarm(session, instance_id=vm)
    judge(session, index, at(65), [vm], None)
    assert judge(session, index, at(5), [vm], None) == ([], None, [])  # a late batch
    assert index.candidates(session, at(70), [vm], None) == ([], None)
    assert index.candidates(session, at(120), [vm], None) == ([vm], None)


def test_a_claim_lost_to_an_earlier_period_is_asked_again(session, index):
    """A backlog: the batch of the next period read the alarm due, then the batch of the
    previous period (slower) claimed it first; the next batch of the period judges it."""
    vm = str(uuid.uuid4())
    made = make_alarm(session, instance_id=vm)
    late = alarms.due(session, at(5), instance_ids=[vm])[0]
    candidates, _ = index.candidates(session, at(60), [vm], None)
    due = alarms.due(session, at(60), instance_ids=candidates)
    index.judged_except(candidates, None, at(60), {alarm.id for alarm in due})
    taken = index.take(due[0].id, at(60))
    assert alarms.claim(session, late, at(5))  # the previous period's batch wins
    assert not alarms.claim(session, due[0], at(60))
    taken.give_back()
    assert judge(session, index, at(65), [vm], None) == ([vm], None, [made["id"]])
    assert index.candidates(session, at(70), [vm], None) == ([], None)


def test_an_alarm_taken_by_another_worker_meanwhile_is_not_claimed_again(session, index):
    """Two batches of one period read the alarm due; the first takes it before judging (which
    takes a while); the second leaves it instead of losing a claim in the database."""
    vm = str(uuid.uuid4())
    make_alarm(session, instance_id=vm)
    first, _ = index.candidates(session, at(60), [vm], None)
    second, _ = index.candidates(session, at(65), [vm], None)
    assert first == second == [vm]
    alarm_id = alarms.due(session, at(60), instance_ids=first)[0].id
    assert index.take(alarm_id, at(60)) is not None
    assert index.take(alarm_id, at(65)) is None
    assert index.take(alarm_id, at(120)) is not None
