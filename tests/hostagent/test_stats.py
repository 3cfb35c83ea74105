"""Domain stats against a real test:///default connection: the bulk call gives only the state
there, so the per-domain fallbacks fill every other field."""
import uuid

import pytest

from common.schemas import dump, load
from hostagent import domains, stats
from hostagent.domain_xml import build_domain_xml
from hostagent.schemas import DomainSpec, DomainStatsSchema


@pytest.fixture
def domain(conn):
    spec = load(DomainSpec, {
        "instance_id": str(uuid.uuid4()), "name": f"st-{uuid.uuid4().hex[:8]}", "vcpus": 2,
        "memory_mib": 128, "cpu_weight": 1024, "cpu_cap": 0,
        "disk_path": "/labcloud-test/root.qcow2", "mac": "aa:00:0a:63:00:09", "ip": "10.99.0.9"})
    domains.create_domain(conn, spec["instance_id"], build_domain_xml(spec, {}, "test:///default"))
    yield spec["instance_id"]
    domains.destroy_domain(conn, spec["instance_id"])


def test_running_domain_has_every_field(conn, domain):
    samples = {s["instance_id"]: s for s in stats.collect(conn)}
    sample = samples[domain]
    assert sample["state"] == "running" and sample["vcpus"] == 2
    assert sample["memory_kib"] == 128 * 1024
    for field in ("cpu_time_ns", "disk_read_bytes", "disk_write_bytes", "net_rx_bytes", "net_tx_bytes"):
        assert isinstance(sample[field], int) and sample[field] > 0, field
    # The driver's own sample domain 'test' is not labcloud's: it is not reported.
    test_uuid = conn.lookupByName("test").UUIDString()
    assert test_uuid not in samples
    event = dump(DomainStatsSchema, {"host": "h", "at": None, "domains": list(samples.values())})
    assert event["domains"][0].keys() == sample.keys()


def test_stopped_domain_has_no_io_counters(conn, domain):
    conn.lookupByUUIDString(domain).destroy()
    sample = {s["instance_id"]: s for s in stats.collect(conn)}[domain]
    assert sample["state"] == "shutoff"
    assert sample["disk_read_bytes"] is None and sample["net_tx_bytes"] is None


def test_bulk_fields_win_over_fallbacks():
    record = {"state.state": 1, "cpu.time": 5, "balloon.current": 1024, "vcpu.current": 1,
              "block.count": 2, "block.0.rd.bytes": 10, "block.1.rd.bytes": 5, "block.0.wr.bytes": 1,
              "net.count": 1, "net.0.rx.bytes": 7, "net.0.tx.bytes": 8}
    assert stats.from_bulk(record) == {
        "state": "running", "vcpus": 1, "cpu_time_ns": 5, "memory_kib": 1024, "disk_read_bytes": 15,
        "disk_write_bytes": 1, "net_rx_bytes": 7, "net_tx_bytes": 8}
    assert stats.from_bulk({"state.state": 5})["disk_read_bytes"] is None
