"""Domain stats against a real test:///default connection: the bulk call gives only the state
there, so the per-domain fallbacks fill every other field."""
import uuid

import pytest

from common.schemas import dump, load
from hostagent import domains, host_stats, stats
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
    assert len(sample["vcpu_time_ns"]) == 2 and all(t > 0 for t in sample["vcpu_time_ns"])
    assert isinstance(sample["memory_internal_free_kib"], int)
    assert [d["device"] for d in sample["disks"]] == ["vda"]
    assert sample["disks"][0]["read_bytes"] == sample["disk_read_bytes"]
    assert sample["disks"][0]["write_reqs"] > 0
    assert [n["index"] for n in sample["nics"]] == [0]
    assert sample["nics"][0]["tx_bytes"] == sample["net_tx_bytes"]
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
    assert sample["vcpu_time_ns"] is None and sample["memory_internal_free_kib"] is None


def test_bulk_fields_win_over_fallbacks():
    record = {"state.state": 1, "cpu.time": 5, "balloon.current": 1024, "balloon.unused": 100,
              "vcpu.current": 2, "vcpu.0.time": 3, "vcpu.1.time": 2,
              "block.count": 2, "block.0.name": "vda", "block.0.rd.bytes": 10, "block.0.rd.reqs": 2,
              "block.1.name": "vdb", "block.1.rd.bytes": 5, "block.0.wr.bytes": 1,
              "net.count": 1, "net.0.name": "vnet3", "net.0.rx.bytes": 7, "net.0.tx.bytes": 8}
    sample = stats.with_totals(stats.from_bulk(record), io=True)
    assert sample == {
        "state": "running", "vcpus": 2, "cpu_time_ns": 5, "memory_kib": 1024,
        "vcpu_time_ns": [3, 2], "memory_internal_free_kib": 100,
        "disks": [{"device": "vda", "read_bytes": 10, "write_bytes": 1, "read_reqs": 2, "write_reqs": None},
                  {"device": "vdb", "read_bytes": 5, "write_bytes": None, "read_reqs": None,
                   "write_reqs": None}],
        "nics": [{"index": 0, "rx_bytes": 7, "tx_bytes": 8}],
        "disk_read_bytes": 15, "disk_write_bytes": 1, "net_rx_bytes": 7, "net_tx_bytes": 8}
    assert stats.from_bulk({"state.state": 5})["disks"] is None


def test_host_sample(conn, tmp_path):
    sample = host_stats.collect_host(conn)
    assert len(sample["cpu_busy_ns"]) == conn.getInfo()[2]
    assert sample["memory_total_kib"] == conn.getInfo()[1] * 1024
    assert sample["memory_free_kib"] >= 0 and sample["load_1m"] >= 0
    assert all(i["name"] != "lo" for i in sample["interfaces"])
    proc = tmp_path / "dev"
    proc.write_text("Inter-|   Receive  |  Transmit\n face |bytes packets ...\n"
                    "    lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n"
                    "  eth0: 100 2 0 0 0 0 0 0 200 3 0 0 0 0 0 0\n")
    assert host_stats.interfaces(str(proc)) == [{"name": "eth0", "rx_bytes": 100, "tx_bytes": 200}]
    event = dump(DomainStatsSchema, {"host": "h", "at": None, "domains": [], "host_sample": sample})
    assert event["host_sample"]["cpu_busy_ns"] == sample["cpu_busy_ns"]
