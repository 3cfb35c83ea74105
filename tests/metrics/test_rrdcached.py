"""The store through a real rrdcached (labcloud run's default): a host's batch is one request,
the files are written later by the daemon, every read sees what it holds (librrd flushes the
file first), a daemon stopped with values in hand writes them, one that is down makes the batch
fail loudly and is found again when it is back, and a removed file leaves nothing behind in the
daemon. (One killed with SIGKILL loses what it had not yet written to its journal: rrdcached
buffers the journal, up to a few KiB of updates.)"""
import os
import uuid

import pytest
import rrdtool

from common.rrd import read as rrd_read
from common.rrd.cached import RrdCached, RrdCachedError, escape, parse_address
from common.rrd.store import DELETED, STALE, STORED, MetricsStore
from labcloud.rrdcached import RrdCachedDaemon
from tests.metrics.test_rrd_store import FakeClock, T0, sample


@pytest.fixture
def daemon(tmp_path):
    running = RrdCachedDaemon(str(tmp_path / "run"), str(tmp_path)).start()
    yield running
    running.stop()


@pytest.fixture
def clock():
    return FakeClock(T0)


def batch(ids, i):
    return [{"instance_id": vm, **sample(i)} for vm in ids]


def on_disk_last(path):
    """The file's last update as written (rrdtool without the daemon: no flush)."""
    return rrdtool.last(path)


def test_a_batch_is_one_request_and_reads_flush_what_the_daemon_holds(tmp_path, clock, daemon):
    store = MetricsStore(str(tmp_path / "metrics"), step=1, now=clock, daemon=daemon.address)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    for i in range(6):
        assert store.store_batch(T0 + i, batch(ids, i)) == [STORED] * 5
    stats = store.cache.stats()
    assert int(stats["UpdatesReceived"]) == 5 * 6 and int(stats["DataSetsWritten"]) == 0
    path = store.path_of(ids[0])
    assert on_disk_last(path) < T0 + 5  # the file has not been written yet
    clock.now = T0 + 5
    cpu = [v for _, v in rrd_read.series(store, ids[0], 10)["series"]["cpu_percent"] if v is not None]
    assert cpu and all(v == pytest.approx(50, rel=0.01) for v in cpu)
    assert on_disk_last(path) == T0 + 5  # the read made the daemon write it
    # The daemon knows the last update: a redelivered batch is stale, for a new store too.
    fresh = MetricsStore(str(tmp_path / "metrics"), step=1, now=clock, daemon=daemon.address)
    assert fresh.store_batch(T0 + 5, batch(ids, 5)) == [STALE] * 5


def test_a_new_device_flushes_the_file_before_it_is_tuned(tmp_path, clock, daemon):
    store = MetricsStore(str(tmp_path / "metrics"), step=1, now=clock, daemon=daemon.address)
    vm = str(uuid.uuid4())
    for i in range(3):
        assert store.store(vm, T0 + i, sample(i)) == STORED
    with_volume = {**sample(3), "disks": sample(3)["disks"] + [
        {"device": "vdb", "read_bytes": 0, "write_bytes": 0, "read_reqs": 0, "write_reqs": 0}]}
    assert store.store(vm, T0 + 3, with_volume) == STORED
    assert "vbd_vdb_write" in store.names_of(store.path_of(vm))
    clock.now = T0 + 3
    rx = [v for _, v in rrd_read.series(store, vm, 10)["series"]["net_rx_bps"] if v is not None]
    assert len(rx) == 3  # the samples before the tune were not lost


def test_a_stopped_daemon_writes_what_it_held_and_a_restarted_one_is_found_again(tmp_path, clock, daemon):
    store = MetricsStore(str(tmp_path / "metrics"), step=1, now=clock, daemon=daemon.address)
    vm = str(uuid.uuid4())
    for i in range(4):
        assert store.store(vm, T0 + i, sample(i)) == STORED
    path = store.path_of(vm)
    assert on_disk_last(path) < T0 + 3
    daemon.stop()  # SIGTERM, as a stack's stop: -F writes every file first
    assert on_disk_last(path) == T0 + 3
    # Down: the batch fails loudly (the handler logs it), nothing is reported stored.
    with pytest.raises(RrdCachedError):
        store.store_batch(T0 + 4, batch([vm], 4))
    daemon.start()
    assert store.store(vm, T0 + 5, sample(5)) == STORED  # the client connects again
    clock.now = T0 + 5
    assert rrdtool.last("--daemon", daemon.address, path) == T0 + 5
    rx = dict(rrd_read.series(store, vm, 5)["series"]["net_rx_bps"])
    assert rx[T0 + 3] == pytest.approx(1000, rel=0.01)


def test_a_purged_file_is_forgotten_by_the_daemon(tmp_path, clock, daemon):
    store = MetricsStore(str(tmp_path / "metrics"), step=1, now=clock, retention=0, daemon=daemon.address)
    vm, other = str(uuid.uuid4()), str(uuid.uuid4())
    assert store.store_batch(T0, batch([vm, other], 0)) == [STORED, STORED]
    assert store.store_batch(T0 + 1, batch([vm, other], 1)) == [STORED, STORED]
    assert int(store.cache.stats()["TreeNodesNumber"]) == 2
    assert store.delete(vm) is True  # retention 0: purged at once
    assert int(store.cache.stats()["TreeNodesNumber"]) == 1
    assert not os.path.exists(store.path_of(vm))
    assert store.store_batch(T0 + 2, batch([vm, other], 2)) == [DELETED, STORED]


def test_a_path_with_a_space_and_the_address_forms(tmp_path, clock, daemon):
    store = MetricsStore(str(tmp_path / "lab data"), step=1, now=clock, daemon=daemon.address)
    vm = str(uuid.uuid4())
    assert [store.store(vm, T0 + i, sample(i)) for i in range(3)] == [STORED] * 3
    clock.now = T0 + 2
    assert rrd_read.series(store, vm, 5)["instance_id"] == vm
    assert escape("/a b\\c") == "/a\\ b\\\\c"
    assert parse_address("unix:/run/r.sock")[1] == "/run/r.sock"
    assert parse_address("/run/r.sock")[1] == "/run/r.sock"
    assert parse_address("rrdcached:4000")[1] == ("rrdcached", 4000)
    assert parse_address("rrdcached")[1] == ("rrdcached", 42217)


def test_an_unreachable_daemon_is_named_in_the_error(tmp_path):
    client = RrdCached(f"unix:{tmp_path / 'nobody.sock'}")
    with pytest.raises(RrdCachedError, match="nobody.sock"):
        client.update_batch([("/x.rrd", "1:1")])
