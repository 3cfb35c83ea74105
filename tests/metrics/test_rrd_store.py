"""The rrdtool store against real rrd files in a temp directory, with a 1-second step and a
clock the test controls (rrdtool itself only sees the timestamps we pass it)."""
import os
import uuid
import xml.etree.ElementTree as ET

import pytest

from common.errors import InvalidInput, NotFound
from services.metrics import rrd_store
from services.metrics.rrd_store import DELETED, STALE, STORED, MetricsStore

T0 = 1_700_000_000  # first sample; any fixed time works, rrdtool does not read the wall clock
MIB = 1024


class FakeClock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path, clock):
    return MetricsStore(str(tmp_path), step=1, now=clock)


def sample(i, vcpus=1, cpu_per_s=0.5e9, memory_mib=2048):
    """Counters as a domain that has run i seconds at a constant rate."""
    return {"vcpus": vcpus, "cpu_time_ns": int(i * cpu_per_s), "memory_kib": memory_mib * MIB,
            "disk_read_bytes": i * 4096, "disk_write_bytes": i * 8192,
            "net_rx_bytes": i * 1000, "net_tx_bytes": i * 500}


def feed(store, instance_id, seconds, **kwargs):
    for i in range(seconds + 1):
        assert store.store(instance_id, T0 + i, sample(i, **kwargs)) == STORED


def values_at(result, name, ts):
    return dict(result["series"][name])[ts]


def test_rates_and_conversions(store, clock):
    vm = str(uuid.uuid4())
    feed(store, vm, 30)
    clock.now = T0 + 30
    result = store.series(vm, 60)

    assert result["instance_id"] == vm and result["step"] == 1
    assert result["end"] == T0 + 30 and result["start"] == T0 - 29
    for name, points in result["series"].items():
        assert [ts for ts, _ in points] == list(range(T0 - 29, T0 + 31)), name
    for ts in range(T0 + 1, T0 + 31):
        assert values_at(result, "cpu_percent", ts) == pytest.approx(50.0, abs=0.01)
        assert values_at(result, "memory_mib", ts) == pytest.approx(2048)
        assert values_at(result, "disk_read_bps", ts) == pytest.approx(4096)
        assert values_at(result, "disk_write_bps", ts) == pytest.approx(8192)
        assert values_at(result, "net_rx_bps", ts) == pytest.approx(1000)
        assert values_at(result, "net_tx_bps", ts) == pytest.approx(500)
    # Before the first sample there is nothing; a rate needs two samples, so T0 has none either.
    assert all(values_at(result, "cpu_percent", ts) is None for ts in range(T0 - 29, T0 + 1))
    assert all(values_at(result, "memory_mib", ts) is None for ts in range(T0 - 29, T0))


def test_cpu_percent_is_of_all_vcpus(store, clock):
    vm = str(uuid.uuid4())
    feed(store, vm, 10, vcpus=2, cpu_per_s=1.5e9)  # 1.5 vCPU-seconds per second out of 2
    clock.now = T0 + 10
    result = store.series(vm, 60)
    assert values_at(result, "cpu_percent", T0 + 5) == pytest.approx(75.0, abs=0.01)


def test_counter_reset_and_gap_are_unknown_not_wrong(store, clock):
    vm = str(uuid.uuid4())
    feed(store, vm, 5)
    # The domain restarted: its counters begin again from 0. No negative rate, no spike.
    assert store.store(vm, T0 + 6, sample(0)) == STORED
    assert store.store(vm, T0 + 7, sample(1)) == STORED
    # Then the host went quiet for longer than the heartbeat (3 steps).
    assert store.store(vm, T0 + 20, sample(14)) == STORED
    assert store.store(vm, T0 + 21, sample(15)) == STORED
    clock.now = T0 + 21
    result = store.series(vm, 60)
    assert values_at(result, "cpu_percent", T0 + 6) is None
    assert values_at(result, "net_rx_bps", T0 + 6) is None
    assert values_at(result, "cpu_percent", T0 + 7) == pytest.approx(50.0, abs=0.01)
    assert all(values_at(result, "memory_mib", ts) is None for ts in range(T0 + 8, T0 + 20))
    assert values_at(result, "net_rx_bps", T0 + 21) == pytest.approx(1000)
    points = [v for _, v in result["series"]["cpu_percent"] if v is not None]
    assert points and all(0 <= v <= 100 for v in points)


def test_missing_counters_leave_only_their_series_unknown(store, clock):
    vm = str(uuid.uuid4())
    for i in range(6):
        values = sample(i)
        values.update(vcpus=None, disk_read_bytes=None)  # the hypervisor could not tell
        assert store.store(vm, T0 + i, values) == STORED
    clock.now = T0 + 5
    result = store.series(vm, 60)
    assert values_at(result, "cpu_percent", T0 + 3) is None
    assert values_at(result, "disk_read_bps", T0 + 3) is None
    assert values_at(result, "net_rx_bps", T0 + 3) == pytest.approx(1000)
    assert values_at(result, "memory_mib", T0 + 3) == pytest.approx(2048)


def test_redelivered_and_old_samples_are_dropped(store, clock):
    vm = str(uuid.uuid4())
    feed(store, vm, 10)
    bogus = sample(10, cpu_per_s=50e9)  # would be a 5000 % spike if it got in
    assert store.store(vm, T0 + 10, bogus) == STALE        # same sample again
    assert store.store(vm, T0 + 10.6, bogus) == STALE      # same second
    assert store.store(vm, T0 + 3, bogus) == STALE         # older than the file
    assert store.store(vm, T0 + 11, sample(11)) == STORED  # and life goes on
    clock.now = T0 + 11
    result = store.series(vm, 60)
    assert values_at(result, "cpu_percent", T0 + 10) == pytest.approx(50.0, abs=0.01)
    assert values_at(result, "cpu_percent", T0 + 11) == pytest.approx(50.0, abs=0.01)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "abc", "", None, "x" * 36,
                                 "00000000-0000-0000-0000-00000000000g/.."])
def test_bad_instance_ids_are_refused(store, tmp_path, bad):
    with pytest.raises(InvalidInput) as err:
        store.store(bad, T0, sample(0))
    assert "instance_id" in err.value.fields
    with pytest.raises(InvalidInput):
        store.series(bad, 60)
    with pytest.raises(InvalidInput):
        store.delete(bad)
    assert os.listdir(tmp_path / "instances") == []


def test_instance_id_spellings_share_one_file(store, tmp_path):
    vm = uuid.uuid4()
    assert store.store(str(vm).upper(), T0, sample(0)) == STORED
    assert store.store(vm.hex, T0 + 1, sample(1)) == STORED
    assert os.listdir(tmp_path / "instances") == [f"{vm}.rrd"]
    assert store.known_instances() == [str(vm)]


def test_unknown_instance_is_not_found(store):
    with pytest.raises(NotFound):
        store.series(str(uuid.uuid4()), 60)
    with pytest.raises(NotFound):
        store.rrd_updates(T0 - 10, str(uuid.uuid4()))


def test_delete_removes_the_file_and_keeps_late_samples_out(store, tmp_path, clock):
    vm = str(uuid.uuid4())
    feed(store, vm, 3)
    assert store.delete(vm) is True
    assert not (tmp_path / "instances" / f"{vm}.rrd").exists()
    with pytest.raises(NotFound):
        store.series(vm, 60)
    # A redelivered domain_stats arriving after instance_deleted must not bring the file back.
    assert store.store(vm, T0 + 4, sample(4)) == DELETED
    assert not (tmp_path / "instances" / f"{vm}.rrd").exists()
    assert store.delete(vm) is False


def test_old_tombstones_are_pruned(store, tmp_path, clock):
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    store.delete(old)
    clock.now += rrd_store.TOMBSTONE_SECONDS + 1
    store.delete(new)
    assert sorted(os.listdir(tmp_path / "deleted")) == [new]


def test_file_layout_follows_step(store, tmp_path):
    import rrdtool
    vm = str(uuid.uuid4())
    store.store(vm, T0, sample(0))
    info = rrdtool.info(str(tmp_path / "instances" / f"{vm}.rrd"))
    assert info["step"] == 1
    assert info["ds[cpu_ns].type"] == "DERIVE" and info["ds[cpu_ns].min"] == 0
    assert info["ds[vcpus].type"] == "GAUGE" and info["ds[memory_kib].type"] == "GAUGE"
    assert info["ds[net_rx_bytes].minimal_heartbeat"] == 3
    rras = [(info[f"rra[{i}].cf"], info[f"rra[{i}].pdp_per_row"], info[f"rra[{i}].rows"])
            for i in range(3)]
    assert rras == [("AVERAGE", 1, 86400), ("MAX", 1, 86400), ("AVERAGE", 60, 10080)]
    assert rrd_store.create_args(10)[-3:] == [
        "RRA:AVERAGE:0.5:1:8640", "RRA:MAX:0.5:1:8640", "RRA:AVERAGE:0.5:6:10080"]


def test_long_windows_are_consolidated(store, clock):
    vm = str(uuid.uuid4())
    feed(store, vm, 300)
    clock.now = T0 + 300
    result = store.series(vm, 86400)
    assert result["step"] > 1
    assert len(result["series"]["cpu_percent"]) <= rrd_store.MAX_POINTS + 2
    known = [v for _, v in result["series"]["net_rx_bps"] if v is not None]
    assert known and all(v == pytest.approx(1000, rel=0.01) for v in known)


def parse_xport(text):
    root = ET.fromstring(text.split("\n", 1)[1] if text.startswith("<?xml") else text)
    assert root.tag == "xport"
    meta = root.find("meta")
    legend = [e.text for e in meta.find("legend").findall("entry")]
    rows = [(int(row.find("t").text), [v.text for v in row.findall("v")])
            for row in root.find("data").findall("row")]
    return {tag: int(meta.find(tag).text) for tag in ("start", "step", "end", "rows", "columns")}, \
        legend, rows


def test_rrd_updates_xml_for_one_instance(store, clock):
    vm = str(uuid.uuid4())
    feed(store, vm, 20)
    clock.now = T0 + 20
    meta, legend, rows = parse_xport(store.rrd_updates(T0 + 10, vm))
    assert legend == [f"AVERAGE:vm:{vm}:{name}" for name in (
        "cpu_percent", "memory_mib", "disk_read_bps", "disk_write_bps", "net_rx_bps", "net_tx_bps")]
    assert meta["step"] == 1 and meta["columns"] == 6 and meta["rows"] == len(rows) == 10
    assert [t for t, _ in rows] == list(range(T0 + 11, T0 + 21))
    assert meta["start"] == T0 + 11 and meta["end"] == T0 + 20
    for _t, values in rows:
        assert len(values) == 6
        cpu, memory, _, _, rx, _ = (float(v) for v in values)
        assert cpu == pytest.approx(50.0, abs=0.01)
        assert memory == pytest.approx(2048) and rx == pytest.approx(1000)


def test_rrd_updates_xml_for_all_instances(store, clock):
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    feed(store, first, 5)
    for i in range(3, 6):
        store.store(second, T0 + i, sample(i, cpu_per_s=0.25e9))
    clock.now = T0 + 5
    meta, legend, rows = parse_xport(store.rrd_updates(T0 - 5))
    assert meta["columns"] == 12 == len(legend)
    assert {entry.split(":")[2] for entry in legend} == {first, second}
    last = dict(zip(legend, rows[-1][1]))
    assert float(last[f"AVERAGE:vm:{first}:cpu_percent"]) == pytest.approx(50.0, abs=0.01)
    assert float(last[f"AVERAGE:vm:{second}:cpu_percent"]) == pytest.approx(25.0, abs=0.01)
    first_row = dict(zip(legend, rows[0][1]))
    assert first_row[f"AVERAGE:vm:{second}:cpu_percent"] == "NaN"


def test_rrd_updates_with_nothing_stored_is_an_empty_document(store, clock):
    meta, legend, rows = parse_xport(store.rrd_updates(T0 - 60))
    assert legend == [] and rows == [] and meta["rows"] == 0 and meta["columns"] == 0
    with pytest.raises(InvalidInput):
        store.rrd_updates(T0 + 5)
