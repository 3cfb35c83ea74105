"""The metrics service reads what the host agent actually sends, with the agent's own schemas."""
import datetime as dt
import uuid

import pytest

import hostagent.schemas as hostagent_schemas
import services.instances.schemas as instances_schemas
from common.errors import InvalidInput
from common.schemas import dump, load
from services.metrics.schemas import (
    DomainSampleEvent, DomainStatsEvent, InstanceDeletedEvent, MetricsQuery)


def sample(instance_id, **overrides):
    entry = {"instance_id": instance_id, "state": "running", "vcpus": None, "cpu_time_ns": 5,
             "memory_kib": 1, "disk_read_bytes": None, "disk_write_bytes": 0, "net_rx_bytes": 0,
             "net_tx_bytes": 0}
    entry.update(overrides)
    return entry


def test_loads_the_host_agents_own_dump():
    vm = str(uuid.uuid4())
    at = dt.datetime(2025, 1, 2, 3, 4, 5, 250000)  # naive UTC, as common.clock.utcnow gives
    sent = dump(hostagent_schemas.DomainStatsSchema, {"host": "h1", "at": at, "domains": [sample(vm)]})
    batch = load(DomainStatsEvent, sent)
    assert batch["at"] == at.replace(tzinfo=dt.timezone.utc).timestamp()
    loaded = load(DomainSampleEvent, batch["domains"][0])
    assert loaded["instance_id"] == vm and loaded["vcpus"] is None
    assert loaded["disk_read_bytes"] is None and loaded["cpu_time_ns"] == 5


def test_the_events_fields_are_the_senders_not_a_copy():
    assert set(DomainStatsEvent().fields) == set(hostagent_schemas.DomainStatsSchema().fields)
    assert set(DomainSampleEvent().fields) == set(hostagent_schemas.DomainSampleSchema().fields)
    for name, field in DomainSampleEvent().fields.items():
        assert type(field) is type(hostagent_schemas.DomainSampleSchema().fields[name])
    assert set(InstanceDeletedEvent().fields) == {"id"} <= set(instances_schemas.InstanceSchema().fields)
    # What metrics requires is its own business: the sender's schema is left as it was.
    assert not any(f.required for f in hostagent_schemas.DomainSampleSchema().fields.values())


def test_fields_a_newer_sender_adds_are_ignored():
    vm = str(uuid.uuid4())
    batch = load(DomainStatsEvent, {"host": "h", "at": "2023-11-14T22:13:20", "seq": 7,
                                    "domains": [sample(vm, gpu_ns=3)]})
    assert "seq" not in batch
    assert "gpu_ns" not in load(DomainSampleEvent, batch["domains"][0])


@pytest.mark.parametrize("at, expected", [
    ("2023-11-14T22:13:20.5", 1700000000.5),
    ("2023-11-14T22:13:20Z", 1700000000.0),
    ("2023-11-14T23:13:20+01:00", 1700000000.0),
    ("2023-11-14T22:13:20", 1700000000.0),
])
def test_at_is_iso_8601_naive_meaning_utc(at, expected):
    assert load(DomainStatsEvent, {"host": "h", "at": at, "domains": []})["at"] == expected


# Unix seconds too: the agent's contract is an ISO-8601 DateTime.
@pytest.mark.parametrize("at", ["yesterday", True, None, [1], 1700000000.5])
def test_bad_at_is_refused(at):
    with pytest.raises(InvalidInput) as err:
        load(DomainStatsEvent, {"host": "h", "at": at, "domains": []})
    assert "at" in err.value.fields


def test_an_event_without_what_metrics_needs_is_refused():
    with pytest.raises(InvalidInput) as err:
        load(DomainStatsEvent, {"domains": "all"})
    assert set(err.value.fields) == {"host", "at", "domains"}
    with pytest.raises(InvalidInput) as err:
        load(DomainSampleEvent, {"instance_id": str(uuid.uuid4()), "state": "running"})
    assert set(err.value.fields) == {"vcpus", "cpu_time_ns", "memory_kib", "disk_read_bytes",
                                     "disk_write_bytes", "net_rx_bytes", "net_tx_bytes"}


def test_sample_refuses_negative_counters_and_bad_ids():
    with pytest.raises(InvalidInput) as err:
        load(DomainSampleEvent, {"instance_id": "x/../y", "vcpus": 0, "cpu_time_ns": -1,
                                 "memory_kib": 1, "disk_read_bytes": 1, "disk_write_bytes": 1,
                                 "net_rx_bytes": 1, "net_tx_bytes": 1})
    assert set(err.value.fields) == {"instance_id", "vcpus", "cpu_time_ns"}


def test_metrics_query_defaults_and_bounds():
    vm = str(uuid.uuid4())
    assert load(MetricsQuery, {"instance_id": vm.upper()}) == {"instance_id": vm, "seconds": 3600}
    for seconds in (60, 86400):
        assert load(MetricsQuery, {"instance_id": vm, "seconds": seconds})["seconds"] == seconds


def test_instance_deleted_is_read_from_the_instances_own_dump():
    vm = str(uuid.uuid4())
    sent = {"id": vm, "name": "web", "user_id": 1, "state": "deleted", "reason": None,
            "host": "h1", "ip": None, "mac": None, "flavor": 1, "image": 2, "key": None,
            "created_at": "2025-01-02T03:04:05", "ssh": None, "ready": False, "later": "field"}
    assert load(InstanceDeletedEvent, sent) == {"id": vm}
    for bad in ({"id": "../../etc/passwd"}, {"name": "web"}):
        with pytest.raises(InvalidInput) as err:
            load(InstanceDeletedEvent, bad)
        assert set(err.value.fields) == {"id"}
