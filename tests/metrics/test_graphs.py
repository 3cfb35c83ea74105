"""rrdtool graph PNGs of real files (services/metrics/graphs.py): the picture, its cache, and
refusals naming the field."""
import os
import struct
import uuid

import pytest

from common.errors import InvalidInput, NotFound
from common.rrd.store import MetricsStore
from services.metrics.graphs import HEIGHT, WIDTH, Graphs
from tests.metrics.test_rrd_store import FakeClock, sample

NOW = 1_700_003_600
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data):
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def clock():
    return FakeClock(NOW)


@pytest.fixture
def graphs(tmp_path, clock, rrd_daemon):
    store = MetricsStore(str(tmp_path / "rrd"), step=5, now=clock, daemon=rrd_daemon)
    return Graphs(store, str(tmp_path / "cache"), cache_seconds=60)


def feed(store, vm, seconds):
    for i in range(seconds // 5):
        store.store(vm, NOW - seconds + i * 5, sample(i * 5, vcpus=2))


@pytest.mark.parametrize("metric", ["cpu", "memory", "disk", "network"])
@pytest.mark.parametrize("period", ["1h", "1d", "1w", "1m"])
def test_every_metric_and_period_is_a_png(graphs, metric, period):
    vm = str(uuid.uuid4())
    feed(graphs.store, vm, 1800)
    width, height = png_size(graphs.instance_graph(vm, metric, period))
    assert width > WIDTH and height > HEIGHT  # the plot area plus axes, title and legend
    assert width < 2 * WIDTH and height < 3 * HEIGHT


def test_host_graphs(graphs):
    for i in range(60):
        graphs.store.store_host("node-1", NOW - 300 + i * 5, {
            "cpu_busy_ns": [i * 5 * 10**9] * 16, "memory_total_kib": 1 << 20, "memory_free_kib": 1 << 19,
            "load_1m": 1.0, "interfaces": [{"name": "eth0", "rx_bytes": i * 5000, "tx_bytes": i * 100}]})
    for metric in ("cpu", "memory", "network", "load"):
        assert png_size(graphs.host_graph("node-1", metric, "1h"))[0] > WIDTH
    with pytest.raises(InvalidInput) as err:
        graphs.host_graph("node-1", "disk", "1h")  # hosts have no disk samples
    assert set(err.value.fields) == {"metric"}


def test_cached_for_the_rows_step_then_drawn_again(graphs, clock, tmp_path):
    vm = str(uuid.uuid4())
    feed(graphs.store, vm, 600)
    first = graphs.instance_graph(vm, "cpu", "1h")
    cached = tmp_path / "cache" / f"vm-{vm}-cpu-1h-60.png"
    assert cached.read_bytes() == first
    stamp = os.stat(cached).st_mtime
    clock.now += 30
    assert graphs.instance_graph(vm, "cpu", "1h") == first and os.stat(cached).st_mtime == stamp
    clock.now += 31  # a minute: a new 1-minute row may be there
    graphs.instance_graph(vm, "cpu", "1h")
    assert os.stat(cached).st_mtime == clock.now
    # Each period (its own step) has its own entry.
    graphs.instance_graph(vm, "cpu", "1d")
    assert (tmp_path / "cache" / f"vm-{vm}-cpu-1d-3600.png").exists()


def test_bad_metric_or_period_names_the_field_and_unknown_is_not_found(graphs):
    vm = str(uuid.uuid4())
    feed(graphs.store, vm, 60)
    with pytest.raises(InvalidInput) as err:
        graphs.instance_graph(vm, "gpu", "1h")
    assert set(err.value.fields) == {"metric"} and "cpu" in err.value.fields["metric"][0]
    with pytest.raises(InvalidInput) as err:
        graphs.instance_graph(vm, "cpu", "2y")
    assert set(err.value.fields) == {"period"}
    with pytest.raises(InvalidInput) as err:
        graphs.instance_graph(vm, "load", "3d")
    assert set(err.value.fields) == {"metric", "period"}
    with pytest.raises(NotFound):
        graphs.instance_graph(str(uuid.uuid4()), "cpu", "1h")
    with pytest.raises(InvalidInput) as err:
        graphs.host_graph("../etc", "cpu", "1h")
    assert set(err.value.fields) == {"host"}


def test_has_samples_from_the_first_sample_on(graphs):
    vm = str(uuid.uuid4())
    assert not graphs.instance_has_samples(vm) and not graphs.host_has_samples("node-2")
    feed(graphs.store, vm, 5)
    assert graphs.instance_has_samples(vm)
    graphs.store.store_host("node-2", NOW, {"cpu_busy_ns": [0], "memory_total_kib": 1, "memory_free_kib": 1,
                                            "load_1m": 0.0, "interfaces": []})
    assert graphs.host_has_samples("node-2")
    with pytest.raises(InvalidInput) as err:
        graphs.host_has_samples("../etc")
    assert set(err.value.fields) == {"host"}


@pytest.mark.parametrize("request_", [{}, {"instance_id": str(uuid.uuid4()), "host": "node-1"},
                                      {"instance_id": "not-a-uuid"}])
def test_graph_availability_takes_one_instance_or_one_host(request_):
    from common.schemas import load
    from services.metrics.schemas import GraphAvailabilityRequest
    with pytest.raises(InvalidInput) as err:
        load(GraphAvailabilityRequest, request_)
    assert set(err.value.fields) == {"instance_id"}
    assert load(GraphAvailabilityRequest, {"host": "node-1"}) == {"host": "node-1", "instance_id": None}
