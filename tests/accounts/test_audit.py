"""The audit log: records stored once per id, listed newest first with filters, admins only."""
import datetime as dt
import uuid

import pytest

from common.errors import Forbidden, InvalidInput
from common.schemas import load
from services.accounts import audit
from services.accounts.schemas import AuditRecordSchema, ListAuditRequest

from tests.accounts.conftest import ADMIN

START = dt.datetime(2030, 1, 1, 12, 0, 0)


def entry(minute, user_id=7, project_id=None, **extra):
    return {"id": str(uuid.uuid4()), "at": START + dt.timedelta(minutes=minute), "user_id": user_id,
            "username": "ada", "project_id": project_id, "method": "POST", "path": "/api/v1/instances",
            "action": "create_instance", "status": 201, "result": "success", "address": "192.0.2.1",
            "message": None, **extra}


def test_a_record_is_stored_once_per_id(session):
    record = entry(0)
    assert audit.record(session, record) is True
    assert audit.record(session, dict(record, status=500)) is False  # a redelivered event
    [stored] = audit.list_records(session, ADMIN)
    assert (stored.id, stored.status, stored.at) == (record["id"], 201, START)


def test_listing_is_for_admins_newest_first_and_filtered(session, make_user, as_actor):
    for minute, user_id, project_id in [(0, 7, 3), (1, 8, 3), (2, 7, None), (3, 7, 4)]:
        audit.record(session, entry(minute, user_id, project_id))
    minutes = lambda records: [int((r.at - START).total_seconds() // 60) for r in records]  # noqa: E731
    assert minutes(audit.list_records(session, ADMIN)) == [3, 2, 1, 0]
    assert minutes(audit.list_records(session, ADMIN, user=7)) == [3, 2, 0]
    assert minutes(audit.list_records(session, ADMIN, project=3)) == [1, 0]
    assert minutes(audit.list_records(session, ADMIN, since=START + dt.timedelta(minutes=2))) == [3, 2]
    assert minutes(audit.list_records(session, ADMIN, user=7, limit=2)) == [3, 2]
    with pytest.raises(Forbidden):
        audit.list_records(session, as_actor(make_user("ada")))


def test_request_and_record_schemas():
    assert load(ListAuditRequest, {}) == {"user": None, "project": None, "since": None, "limit": 100}
    since = load(ListAuditRequest, {"since": "2030-01-01T13:00:00+01:00"})["since"]
    assert since == START  # offsets are turned into naive UTC
    for bad in [{"limit": 0}, {"limit": 1001}, {"user": 2 ** 64}, {"since": "yesterday"}, {"x": 1}]:
        with pytest.raises(InvalidInput):
            load(ListAuditRequest, bad)
    payload = {**entry(0), "at": "2030-01-01T12:00:00+00:00"}
    assert load(AuditRecordSchema, payload)["at"] == START
    with pytest.raises(InvalidInput) as err:
        load(AuditRecordSchema, {**payload, "id": "not-a-uuid", "result": "maybe"})
    assert set(err.value.fields) == {"id", "result"}
