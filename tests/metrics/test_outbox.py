"""The outbox's compare-and-set steps (services/metrics/outbox.py) and the turning of events into
rows (notifications.py) on a migrated SQLite database, with a clock the test sets."""
import datetime as dt

import pytest
from sqlalchemy.orm import sessionmaker

from common.db import make_engine
from services.metrics import notifications, outbox
from services.metrics.sender import SendPolicy
from tests.databases import migrated_url

T0 = dt.datetime(2030, 1, 1, 12, 0, 0)
POLICY = SendPolicy(retry_base_seconds=5, retry_max_seconds=60, max_attempts=4, claim_seconds=30)


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request):
    """Sessions on one migrated database of each kind labcloud runs on."""
    url = migrated_url(request, request.param, "services.metrics")
    engine = make_engine(url)
    make = sessionmaker(bind=engine, expire_on_commit=False)
    yield make
    engine.dispose()


def queued(session, user_id=7, link="https://cloud/set-password?token=abc"):
    notice = notifications.user_link("user_password_reset", {
        "user": {"id": user_id, "username": "gina", "email": "gina@students.example", "full_name": None},
        "password_link": link})
    return notifications.enqueue(session, notice, "lab.example", T0)


def test_one_row_per_event_and_recipient(sessions):
    session = sessions()
    assert queued(session) == notifications.QUEUED
    assert queued(session) == notifications.DUPLICATE  # the same event again
    assert queued(session, link="https://cloud/set-password?token=other") == notifications.QUEUED  # another reset
    assert queued(session, user_id=8) == notifications.QUEUED
    assert len(outbox.due(session, T0, 10)) == 3


def test_one_claim_wins_and_an_abandoned_claim_expires(sessions):
    first, second = sessions(), sessions()
    queued(first)
    [row_id] = outbox.due(first, T0, 10)
    row = outbox.claim(first, row_id, "replica-a", T0, POLICY.claim_seconds)
    assert row is not None and row.claimed_by == "replica-a"
    assert outbox.claim(second, row_id, "replica-b", T0 + dt.timedelta(seconds=29), 30) is None
    assert outbox.due(second, T0 + dt.timedelta(seconds=29), 10) == []
    # replica-a died mid-send: once its lease is over, replica-b takes the row and sends it.
    later = T0 + dt.timedelta(seconds=31)
    taken = outbox.claim(second, row_id, "replica-b", later, 30)
    assert taken is not None
    assert not outbox.mark_sent(first, row, "replica-a", later)  # too late: no longer its row
    assert outbox.mark_sent(second, taken, "replica-b", later)
    assert outbox.counts(second) == {"sent": 1}
    assert outbox.prune(second, T0) == 0  # younger than the cut-off: kept
    assert outbox.prune(second, T0 + dt.timedelta(days=30)) == 1 and outbox.counts(second) == {}


def test_failures_back_off_exponentially_up_to_the_cap_then_give_up(sessions):
    session = sessions()
    queued(session)
    [row_id] = outbox.due(session, T0, 10)
    now, delays = T0, []
    for _attempt in range(4):
        row = outbox.claim(session, row_id, "replica-a", now, 30)
        state = outbox.mark_failed(session, row, "replica-a", now, OSError("connection refused"), POLICY)
        session.expire_all()
        row = session.get(type(row), row_id)
        if state == "failed":
            break
        delays.append((row.next_attempt_at - now).total_seconds())
        assert outbox.due(session, row.next_attempt_at - dt.timedelta(seconds=1), 10) == []
        now = row.next_attempt_at
    assert delays == [5, 10, 20]
    assert (state, row.state, row.attempts, row.last_error) == ("failed", "failed", 4, "connection refused")
    assert outbox.backoff_seconds(10, 5, 60) == 60


def test_preferences_default_on_and_security_stays_on(sessions):
    session = sessions()
    assert notifications.is_enabled(session, 7, "instance")
    notifications.set_preferences(session, 7, {"instance": False, "security": True}, T0)
    notifications.set_preferences(session, 7, {"instance": False}, T0)  # again: the same
    assert not notifications.is_enabled(session, 7, "instance")
    assert notifications.is_enabled(session, 8, "instance")
    instance = {"id": "0b1c1a3e-5d7f-4c55-8a3e-0f1d2c3b4a59", "name": "web1", "user_id": 7, "reason": None,
                "updated_at": T0}
    notice = notifications.instance_event("instance_ready", instance)
    assert notifications.enqueue(session, notice, "lab.example", T0) == notifications.DISABLED
    assert queued(session) == notifications.QUEUED  # security mail regardless
