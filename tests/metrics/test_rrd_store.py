"""The rrdtool store against real rrd files in a temp directory, with a 1-second step and a
clock the test controls (rrdtool itself only sees the timestamps we pass it)."""
import os
import uuid

import pytest

import rrdtool

from common.errors import InvalidInput, NotFound
from common.rrd import read as rrd_read, store as rrd_store
from common.rrd.store import DELETED, STALE, STORED, MetricsStore

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
def store(tmp_path, clock, rrd_daemon):
    return MetricsStore(str(tmp_path), step=1, now=clock, daemon=rrd_daemon)


def sample(i, vcpus=1, cpu_per_s=0.5e9, memory_mib=2048):
    """Counters as a domain that has run i seconds at a constant rate: each vCPU busy
    cpu_per_s ns per second, one disk and one NIC."""
    return {"vcpus": vcpus, "vcpu_time_ns": [int(i * cpu_per_s)] * vcpus,
            "memory_kib": memory_mib * MIB, "memory_internal_free_kib": 512 * MIB,
            "disks": [{"device": "vda", "read_bytes": i * 4096, "write_bytes": i * 8192,
                       "read_reqs": i * 2, "write_reqs": i * 3}],
            "nics": [{"index": 0, "rx_bytes": i * 1000, "tx_bytes": i * 500}]}


def feed(store, instance_id, seconds, **kwargs):
    for i in range(seconds + 1):
        assert store.store(instance_id, T0 + i, sample(i, **kwargs)) == STORED


def values_at(result, name, ts):
    return dict(result["series"][name])[ts]


def test_rates_and_conversions(store, clock):
    vm = str(uuid.uuid4())
    feed(store, vm, 30)
    clock.now = T0 + 30
    result = rrd_read.series(store, vm, 60)

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
    for i in range(11):  # one vCPU fully busy, the other half: 1.5 vCPU-seconds per second of 2
        assert store.store(vm, T0 + i, {**sample(i), "vcpu_time_ns": [i * 10**9, i * 5 * 10**8]}) == STORED
    clock.now = T0 + 10
    result = rrd_read.series(store, vm, 60)
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
    result = rrd_read.series(store, vm, 60)
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
        values.update(vcpu_time_ns=None)  # the hypervisor could not tell
        values["disks"][0]["read_bytes"] = None
        assert store.store(vm, T0 + i, values) == STORED
    clock.now = T0 + 5
    result = rrd_read.series(store, vm, 60)
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
    result = rrd_read.series(store, vm, 60)
    assert values_at(result, "cpu_percent", T0 + 10) == pytest.approx(50.0, abs=0.01)
    assert values_at(result, "cpu_percent", T0 + 11) == pytest.approx(50.0, abs=0.01)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "abc", "", None, "x" * 36,
                                 "00000000-0000-0000-0000-00000000000g/.."])
def test_bad_instance_ids_are_refused(store, tmp_path, bad):
    with pytest.raises(InvalidInput) as err:
        store.store(bad, T0, sample(0))
    assert "instance_id" in err.value.fields
    with pytest.raises(InvalidInput):
        rrd_read.series(store, bad, 60)
    with pytest.raises(InvalidInput):
        store.delete(bad)
    assert os.listdir(tmp_path / "vms") == []


def test_instance_id_spellings_share_one_file(store, tmp_path):
    vm = uuid.uuid4()
    assert store.store(str(vm).upper(), T0, sample(0)) == STORED
    assert store.store(vm.hex, T0 + 1, sample(1)) == STORED
    assert os.listdir(tmp_path / "vms") == [f"{vm}.rrd"]
    assert store.known_instances() == [str(vm)]


def test_unknown_instance_is_not_found(store):
    with pytest.raises(NotFound):
        rrd_read.series(store, str(uuid.uuid4()), 60)
    with pytest.raises(NotFound):
        rrd_read.rrd_updates(store, T0 - 10, vm_uuid=str(uuid.uuid4()))


def test_a_deleted_instance_is_kept_for_the_retention_time_then_purged(tmp_path, clock, rrd_daemon):
    store = MetricsStore(str(tmp_path), step=1, now=clock, retention=100, daemon=rrd_daemon)
    vm, other = str(uuid.uuid4()), str(uuid.uuid4())
    feed(store, vm, 3)
    feed(store, other, 3)
    path = tmp_path / "vms" / f"{vm}.rrd"
    assert store.delete(vm) is True
    clock.now = T0 + 50
    # Still readable, and a late (redelivered) sample does not change it.
    assert rrd_read.series(store, vm, 60)["instance_id"] == vm
    before = path.read_bytes()
    assert store.store(vm, T0 + 4, sample(4)) == DELETED
    assert path.read_bytes() == before
    assert store.delete(vm) is True  # a repeat keeps the first deletion time
    assert store.purge() == []
    clock.now = T0 + 101
    assert store.purge() == [vm]
    assert not path.exists() and (tmp_path / "vms" / f"{other}.rrd").exists()
    with pytest.raises(NotFound):
        rrd_read.series(store, vm, 60)
    # The tombstone outlives the file: a sample even later does not recreate it.
    assert store.store(vm, T0 + 102, sample(5)) == DELETED and not path.exists()
    assert store.delete(vm) is False
    clock.now = T0 + 101 + rrd_store.TOMBSTONE_SECONDS
    assert store.purge() == []
    assert os.listdir(tmp_path / "deleted") == []


def test_zero_retention_removes_at_once(tmp_path, clock, rrd_daemon):
    store = MetricsStore(str(tmp_path), step=1, now=clock, retention=0, daemon=rrd_daemon)
    vm = str(uuid.uuid4())
    feed(store, vm, 2)
    assert store.delete(vm) is True
    assert not (tmp_path / "vms" / f"{vm}.rrd").exists()
    assert store.store(vm, T0 + 3, sample(3)) == DELETED


def test_file_layout_is_xenservers(tmp_path):
    store = MetricsStore(str(tmp_path), step=5)
    vm = str(uuid.uuid4())
    store.store(vm, T0, {**sample(0, vcpus=2), "nics": [{"index": 0, "rx_bytes": 0, "tx_bytes": 0},
                                                       {"index": 1, "rx_bytes": 0, "tx_bytes": 0}]})
    info = rrdtool.info(str(tmp_path / "vms" / f"{vm}.rrd"))
    assert info["step"] == 5
    names = store.names_of(str(tmp_path / "vms" / f"{vm}.rrd"))
    assert names == ["memory", "memory_int_free", "cpu0", "cpu1", "vbd_vda_read",
                     "vbd_vda_write", "vbd_vda_iops_read", "vbd_vda_iops_write",
                     "vif_0_rx", "vif_0_tx", "vif_1_rx", "vif_1_tx"]
    assert info["ds[cpu0].type"] == "DERIVE" and info["ds[cpu0].min"] == 0
    assert info["ds[memory].type"] == "GAUGE" and info["ds[vif_1_tx].type"] == "DERIVE"
    assert info["ds[vif_0_rx].minimal_heartbeat"] == 15
    rras = [(info[f"rra[{i}].cf"], info[f"rra[{i}].pdp_per_row"] * 5, info[f"rra[{i}].rows"])
            for i in range(12)]
    # 5 s for 10 minutes, 1 min for 2 hours, 1 h for a week, 1 day for a year; AVERAGE, MIN, MAX.
    expected = []
    for seconds, rows in ((5, 120), (60, 120), (3600, 168), (86400, 365)):
        expected += [(cf, seconds, rows) for cf in ("AVERAGE", "MIN", "MAX")]
    assert rras == expected


def test_a_device_that_appears_later_gets_its_data_source(store, clock, tmp_path):
    vm = str(uuid.uuid4())
    feed(store, vm, 3)
    disk = {"device": "vdb", "read_bytes": 0, "write_bytes": 0, "read_reqs": 0, "write_reqs": 0}
    for i in range(4, 10):
        attached = dict(disk, read_bytes=(i - 4) * 100)
        assert store.store(vm, T0 + i, {**sample(i), "disks": sample(i)["disks"] + [attached]}) == STORED
    names = store.names_of(str(tmp_path / "vms" / f"{vm}.rrd"))
    assert "vbd_vdb_read" in names and "vbd_vdb_iops_write" in names
    clock.now = T0 + 9
    result = rrd_read.series(store, vm, 60)
    assert values_at(result, "disk_read_bps", T0 + 3) == pytest.approx(4096)  # vda alone
    assert values_at(result, "disk_read_bps", T0 + 8) == pytest.approx(4196)  # vda + vdb


def test_old_layout_files_are_removed_and_instances_start_new_files(tmp_path, clock):
    vm = str(uuid.uuid4())
    old = tmp_path / "instances"
    old.mkdir()
    rrdtool.create(str(old / f"{vm}.rrd"), "--start", str(T0 - 100), "--step", "10",
                   "DS:vcpus:GAUGE:30:U:U", "DS:cpu_ns:DERIVE:30:0:U", "RRA:AVERAGE:0.5:1:8640")
    store = MetricsStore(str(tmp_path), step=1, now=clock)
    assert store.discarded_old_files == 1 and not old.exists()
    with pytest.raises(NotFound):
        rrd_read.series(store, vm, 60)
    feed(store, vm, 3)
    assert os.listdir(tmp_path / "vms") == [f"{vm}.rrd"]
    assert MetricsStore(str(tmp_path), step=1, now=clock).discarded_old_files == 0


def test_host_samples(store, clock, tmp_path):
    for i in range(6):
        host = {"cpu_busy_ns": [i * 10**9, i * 25 * 10**7], "memory_total_kib": 8 * MIB * MIB,
                "memory_free_kib": 2 * MIB * MIB, "load_1m": 0.5 + i,
                "interfaces": [{"name": "eth0", "rx_bytes": i * 300, "tx_bytes": i * 30},
                               {"name": "a-very-long-bridge-name", "rx_bytes": 0, "tx_bytes": 0}]}
        assert store.store_host("node-1", T0 + i, host) == STORED
    assert store.store_host("node-1", T0 + 5, host) == STALE
    names = store.names_of(str(tmp_path / "hosts" / "node-1.rrd"))
    assert names[:5] == ["memory_total_kib", "memory_free_kib", "loadavg", "cpu0", "cpu1"]
    assert "pif_eth0_rx" in names and all(len(n) <= 19 for n in names)
    with pytest.raises(InvalidInput) as err:
        store.store_host("../etc", T0, host)
    assert "host" in err.value.fields


def test_long_windows_are_consolidated(store, clock):
    vm = str(uuid.uuid4())
    feed(store, vm, 300)
    clock.now = T0 + 300
    result = rrd_read.series(store, vm, 7200)  # beyond the 10 minutes of 1 s rows: minutes
    assert result["step"] > 1
    assert len(result["series"]["cpu_percent"]) <= rrd_read.MAX_POINTS + 2
    known = [v for _, v in result["series"]["net_rx_bps"] if v is not None]
    assert known and all(v == pytest.approx(1000, rel=0.01) for v in known)


def test_a_host_agents_copy_drops_the_vms_that_left(tmp_path):
    from common.rrd.threaded import Metrics
    metrics = Metrics(MetricsStore(str(tmp_path), step=1))
    staying, leaving = str(uuid.uuid4()), str(uuid.uuid4())
    metrics.record(T0, [{"instance_id": staying, **sample(0)}, {"instance_id": leaving, **sample(0)}])
    assert sorted(metrics.raw.known_instances()) == sorted([staying, leaving])
    metrics.record(T0 + 1, [{"instance_id": staying, **sample(1)}])
    assert metrics.raw.known_instances() == [staying]
    # It may come back (migrated back): no tombstone keeps it out.
    metrics.record(T0 + 2, [{"instance_id": leaving, **sample(0)}])
    assert metrics.raw.known_instances() == [leaving]
