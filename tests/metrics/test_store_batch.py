"""MetricsStore.store_batch, a host agent's batch in one go (the metrics service's ingest), against
real rrd files: the same files and outcomes as store() sample by sample, and tombstones honoured
though they are listed once per batch and files are known from a cache, with a second store on
the same directory standing for another replica; and a host's batches kept in order."""
import uuid

import eventlet
import pytest

from common.rrd import read as rrd_read
from common.rrd.store import DELETED, STALE, STORED, MetricsStore
from common.rrd.threaded import Metrics
from tests.metrics.test_rrd_store import FakeClock, T0, sample


@pytest.fixture
def clock():
    return FakeClock(T0)


@pytest.fixture
def make_store(rrd_daemon):
    """Stores on a directory, each with its own connection to this test's rrdcached if any:
    replicas of the service sharing the directory and the daemon."""
    def make(directory, clock, retention=3600):
        return MetricsStore(str(directory), step=1, now=clock, retention=retention, daemon=rrd_daemon)
    return make


def batch(ids, i, **kwargs):
    return [{"instance_id": vm, **sample(i, **kwargs)} for vm in ids]


def test_the_same_files_as_sample_by_sample(tmp_path, clock, make_store):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    one_by_one, batched = make_store(tmp_path / "a", clock), make_store(tmp_path / "b", clock)
    for i in range(20):
        samples = batch(ids, i)
        if i >= 10:  # a second disk shows up, a NIC goes away: the file gains, the NIC is unknown
            samples = [{**s, "disks": s["disks"] + [{**s["disks"][0], "device": "vdb"}], "nics": []}
                       for s in samples]
        assert [one_by_one.store(s["instance_id"], T0 + i, s) for s in samples] == [STORED] * 3
        assert batched.store_batch(T0 + i, samples) == [STORED] * 3
    clock.now = T0 + 19
    for vm in ids:
        expected, got = rrd_read.series(one_by_one, vm, 60), rrd_read.series(batched, vm, 60)
        assert got == expected
        assert batched.names_of(batched.path_of(vm)) == one_by_one.names_of(one_by_one.path_of(vm))
        assert "vbd_vdb_read" in batched.names_of(batched.path_of(vm))
        assert dict(got["series"]["net_rx_bps"])[T0 + 5] == pytest.approx(1000)
        assert dict(got["series"]["net_rx_bps"])[T0 + 15] is None


def test_redelivered_and_older_samples_are_stale(tmp_path, clock, make_store):
    store = make_store(tmp_path, clock)
    vm = str(uuid.uuid4())
    assert store.store_batch(T0 + 5, batch([vm], 5)) == [STORED]
    assert store.store_batch(T0 + 5, batch([vm], 5)) == [STALE]
    assert store.store_batch(T0 + 4, batch([vm], 4)) == [STALE]
    fresh = make_store(tmp_path, clock)  # a restarted service: the file's own last update
    assert fresh.store_batch(T0 + 5, batch([vm], 5)) == [STALE]
    assert fresh.store_batch(T0 + 6, batch([vm], 6)) == [STORED]


def test_an_instance_deleted_by_another_replica_is_not_written(tmp_path, clock, make_store):
    store, replica = make_store(tmp_path, clock), make_store(tmp_path, clock)
    gone, kept = str(uuid.uuid4()), str(uuid.uuid4())
    assert store.store_batch(T0, batch([gone, kept], 0)) == [STORED, STORED]
    before = open(store.path_of(gone), "rb").read()
    replica.delete(gone)
    assert store.store_batch(T0 + 1, batch([gone, kept], 1)) == [DELETED, STORED]
    assert open(store.path_of(gone), "rb").read() == before


def test_a_file_purged_by_another_replica_is_not_recreated(tmp_path, clock, make_store):
    store, replica = make_store(tmp_path, clock), make_store(tmp_path, clock, retention=0)
    vm = str(uuid.uuid4())
    assert store.store_batch(T0, batch([vm], 0)) == [STORED]  # known to this store from now on
    replica.delete(vm)  # retention 0: the file goes at once, the tombstone stays
    assert store.store_batch(T0 + 1, batch([vm], 1)) == [DELETED]
    assert store.store(vm, T0 + 2, sample(2)) == DELETED
    assert not (tmp_path / "vms" / f"{vm}.rrd").exists()


def test_a_deletion_after_the_batch_listed_the_tombstones_still_counts(tmp_path, clock, make_store):
    """delete() in this process while a batch runs: the batch's listing is older than it."""
    store = make_store(tmp_path, clock)
    vm = str(uuid.uuid4())
    assert store.store_batch(T0, batch([vm], 0)) == [STORED]
    listed_before = frozenset()
    store.delete(vm)
    assert store._store_vm(vm, T0 + 1, sample(1), listed_before) == DELETED


def test_a_file_removed_without_a_tombstone_starts_again(tmp_path, clock, make_store):
    """A host agent's copy of a VM that left and came back (drop() in another process): the
    cached knowledge of the file is wrong, rrdtool says so, the file is made anew."""
    store, other = make_store(tmp_path, clock), make_store(tmp_path, clock)
    vm = str(uuid.uuid4())
    assert store.store_batch(T0, batch([vm], 0)) == [STORED]
    other.drop(vm)
    assert store.store_batch(T0 + 1, batch([vm], 1)) == [STORED]
    assert store.store_batch(T0 + 2, batch([vm], 2)) == [STORED]
    clock.now = T0 + 2
    series = rrd_read.series(store, vm, 60)["series"]
    assert dict(series["net_rx_bps"])[T0 + 2] == pytest.approx(1000)


def test_batches_of_one_host_are_stored_in_the_order_handed_in(tmp_path, clock, make_store):
    """A backlog: twenty steps of one host handed to the native threads at once, as concurrent
    workers do; none is stored after a newer one (which would drop it as stale)."""
    metrics = Metrics(make_store(tmp_path, clock))
    ids = [str(uuid.uuid4()) for _ in range(5)]
    pool = eventlet.GreenPool()
    results = [pool.spawn(metrics.store_batch, T0 + i, batch(ids, i), "h1") for i in range(20)]
    assert [result.wait() for result in results] == [[STORED] * 5] * 20
