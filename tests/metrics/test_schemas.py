"""The metrics service reads what the host agent actually sends."""
import datetime as dt
import uuid

import pytest

from common.errors import InvalidInput
from common.schemas import dump, load
from services.metrics.schemas import DomainSampleSchema, DomainStatsSchema, MetricsQuery


def test_loads_the_host_agents_own_dump():
    import hostagent.schemas as hostagent_schemas
    vm = str(uuid.uuid4())
    at = dt.datetime(2025, 1, 2, 3, 4, 5, 250000)  # naive UTC, as common.clock.utcnow gives
    sent = dump(hostagent_schemas.DomainStatsSchema, {"host": "h1", "at": at, "domains": [
        {"instance_id": vm, "state": "running", "vcpus": None, "cpu_time_ns": 5, "memory_kib": 1,
         "disk_read_bytes": None, "disk_write_bytes": 0, "net_rx_bytes": 0, "net_tx_bytes": 0}]})
    batch = load(DomainStatsSchema, sent)
    assert batch["at"] == at.replace(tzinfo=dt.timezone.utc).timestamp()
    sample = load(DomainSampleSchema, batch["domains"][0])
    assert sample["instance_id"] == vm and sample["vcpus"] is None
    assert sample["disk_read_bytes"] is None and sample["cpu_time_ns"] == 5


@pytest.mark.parametrize("at, expected", [
    (1700000000.5, 1700000000.5),
    ("2023-11-14T22:13:20Z", 1700000000.0),
    ("2023-11-14T23:13:20+01:00", 1700000000.0),
    ("2023-11-14T22:13:20", 1700000000.0),
])
def test_at_accepts_unix_seconds_and_iso_8601(at, expected):
    assert load(DomainStatsSchema, {"host": "h", "at": at, "domains": []})["at"] == expected


@pytest.mark.parametrize("at", ["yesterday", True, None, [1]])
def test_bad_at_is_refused(at):
    with pytest.raises(InvalidInput) as err:
        load(DomainStatsSchema, {"host": "h", "at": at, "domains": []})
    assert "at" in err.value.fields


def test_sample_refuses_negative_counters_and_bad_ids():
    with pytest.raises(InvalidInput) as err:
        load(DomainSampleSchema, {"instance_id": "x/../y", "vcpus": 0, "cpu_time_ns": -1,
                                  "memory_kib": 1, "disk_read_bytes": 1, "disk_write_bytes": 1,
                                  "net_rx_bytes": 1, "net_tx_bytes": 1})
    assert set(err.value.fields) == {"instance_id", "vcpus", "cpu_time_ns"}


def test_metrics_query_defaults_and_bounds():
    vm = str(uuid.uuid4())
    assert load(MetricsQuery, {"instance_id": vm.upper()}) == {"instance_id": vm, "seconds": 3600}
    for seconds in (60, 86400):
        assert load(MetricsQuery, {"instance_id": vm, "seconds": seconds})["seconds"] == seconds
