"""XenServer's /rrd_updates and /vm_rrd from real rrd files (1-second step, a test clock)."""
import json
import uuid
import xml.etree.ElementTree as ET

import pytest

from common.errors import InvalidInput, NotFound
from common.rrd import read as rrd_read
from common.rrd.store import MetricsStore
from tests.metrics.test_rrd_store import T0, FakeClock, feed, sample

VM_NAMES = ["memory", "memory_internal_free", "cpu0", "vbd_vda_read", "vbd_vda_write",
            "vbd_vda_iops_read", "vbd_vda_iops_write", "vif_0_rx", "vif_0_tx"]


@pytest.fixture
def clock():
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path, clock, rrd_daemon):
    return MetricsStore(str(tmp_path), step=1, now=clock, daemon=rrd_daemon)


def parse_xport(text):
    """(meta, legend, rows) of XenServer's XML; rows as (t, {legend entry: float or None})."""
    assert text.startswith('<?xml version="1.0"')
    root = ET.fromstring(text.split("\n", 1)[1])
    assert root.tag == "xport"
    meta = root.find("meta")
    legend = [e.text for e in meta.find("legend").findall("entry")]
    rows = []
    for row in root.find("data").findall("row"):
        values = [None if v.text == "NaN" else float(v.text) for v in row.findall("v")]
        assert len(values) == len(legend)
        rows.append((int(row.find("t").text), dict(zip(legend, values))))
    head = {tag: int(meta.find(tag).text) for tag in ("start", "step", "end", "rows", "columns")}
    return head, legend, rows


def test_one_vm_every_data_source_and_cf_newest_first(store, clock):
    vm = str(uuid.uuid4())
    feed(store, vm, 20)
    clock.now = T0 + 20
    meta, legend, rows = parse_xport(rrd_read.rrd_updates(store, T0 + 10, vm_uuid=vm))
    assert legend == [f"{cf}:vm:{vm}:{name}" for name in VM_NAMES
                      for cf in ("AVERAGE", "MIN", "MAX")]
    assert meta["step"] == 1 and meta["columns"] == len(legend) and meta["rows"] == len(rows) == 10
    assert [t for t, _ in rows] == list(range(T0 + 20, T0 + 10, -1))  # newest first
    assert meta["end"] == T0 + 20 and meta["start"] == T0 + 11
    for _t, values in rows:
        assert values[f"AVERAGE:vm:{vm}:cpu0"] == pytest.approx(0.5, abs=1e-6)  # 0..1
        assert values[f"MAX:vm:{vm}:memory"] == pytest.approx(2048 * 1024 * 1024)
        assert values[f"AVERAGE:vm:{vm}:memory_internal_free"] == pytest.approx(512 * 1024)
        assert values[f"MIN:vm:{vm}:vbd_vda_read"] == pytest.approx(4096)
        assert values[f"AVERAGE:vm:{vm}:vbd_vda_iops_write"] == pytest.approx(3)
        assert values[f"AVERAGE:vm:{vm}:vif_0_tx"] == pytest.approx(500)


def test_cf_interval_and_json(store, clock):
    vm = str(uuid.uuid4())
    feed(store, vm, 300)
    clock.now = T0 + 300
    meta, legend, rows = parse_xport(rrd_read.rrd_updates(store, T0, cf="MAX", interval=60))
    assert legend == [f"MAX:vm:{vm}:{name}" for name in VM_NAMES]
    assert meta["step"] == 60 and [t for t, _ in rows] == sorted((t for t, _ in rows), reverse=True)
    assert rows[1][1][f"MAX:vm:{vm}:vif_0_rx"] == pytest.approx(1000)
    answer = json.loads(rrd_read.rrd_updates(store, T0 + 290, vm_uuid=vm, cf="AVERAGE", as_json=True))
    assert answer["meta"]["legend"] == [f"AVERAGE:vm:{vm}:{name}" for name in VM_NAMES]
    assert answer["meta"]["rows"] == len(answer["data"]) == 10
    assert [row["t"] for row in answer["data"]] == list(range(T0 + 300, T0 + 290, -1))
    assert answer["data"][0]["values"][VM_NAMES.index("cpu0")] == pytest.approx(0.5)


def test_host_true_adds_the_hosts_and_a_stopped_vm_keeps_its_nan(store, clock):
    running, stopped = str(uuid.uuid4()), str(uuid.uuid4())
    feed(store, running, 5)
    for i in range(3):
        store.store(stopped, T0 + i, sample(i))
    for i in range(6):
        store.store_host("node-1", T0 + i, {"cpu_busy_ns": [i * 25 * 10**7], "memory_total_kib": 1024,
                                            "memory_free_kib": 512, "load_1m": 1.5, "interfaces": []})
    clock.now = T0 + 5
    _meta, legend, rows = parse_xport(rrd_read.rrd_updates(store, T0, cf="AVERAGE"))
    assert {entry.split(":")[1] for entry in legend} == {"vm"}
    _meta, legend, rows = parse_xport(rrd_read.rrd_updates(store, T0, cf="AVERAGE", host=True))
    assert {entry.split(":")[2] for entry in legend} == {running, stopped, "node-1"}
    newest = rows[0][1]
    assert newest["AVERAGE:host:node-1:cpu0"] == pytest.approx(0.25)
    assert newest["AVERAGE:host:node-1:loadavg"] == pytest.approx(1.5)
    assert newest[f"AVERAGE:vm:{stopped}:cpu0"] is None
    assert newest[f"AVERAGE:vm:{running}:cpu0"] == pytest.approx(0.5)


def test_nothing_stored_is_an_empty_document_and_bad_start_is_refused(store, clock):
    meta, legend, rows = parse_xport(rrd_read.rrd_updates(store, T0 - 60))
    assert legend == [] and rows == [] and meta["rows"] == 0 and meta["columns"] == 0
    with pytest.raises(InvalidInput) as err:
        rrd_read.rrd_updates(store, T0 + 5)
    assert "start" in err.value.fields
    with pytest.raises(NotFound):
        rrd_read.rrd_updates(store, T0 - 60, vm_uuid=str(uuid.uuid4()))


def test_vm_rrd_is_the_whole_file(store):
    vm = str(uuid.uuid4())
    feed(store, vm, 3)
    root = ET.fromstring(rrd_read.vm_rrd(store, vm).split("\n", 1)[1].split("\n", 1)[1])
    assert root.tag == "rrd" and root.find("step").text.strip() == "1"
    assert [ds.find("name").text.strip() for ds in root.findall("ds")][:3] == [
        "memory", "memory_int_free", "cpu0"]
    assert len(root.findall("rra")) == 12
    with pytest.raises(NotFound):
        rrd_read.vm_rrd(store, str(uuid.uuid4()))


def test_one_series_alone_is_the_same_as_among_all(store, clock):
    """An alarm reads only its metric's data sources (`only`): the same values as the whole."""
    vm = str(uuid.uuid4())
    feed(store, vm, 20)
    clock.now = T0 + 20
    whole = rrd_read.series(store, vm, 15)
    for name in rrd_read.SERIES:
        alone = rrd_read.series(store, vm, 15, only=name)
        assert list(alone["series"]) == [name]
        assert alone["series"][name] == whole["series"][name]
        assert any(v is not None for _, v in alone["series"][name]), name


def test_a_batch_of_alarm_reads_keeps_going_past_one_that_fails(store, clock):
    from common.rrd.threaded import Metrics
    vm = str(uuid.uuid4())
    feed(store, vm, 20)
    reads = [(vm, None, "cpu_percent", T0, T0 + 20), ("not-a-uuid", None, "cpu_percent", T0, T0 + 20),
             (None, "no-such-host", "loadavg", T0, T0 + 20)]
    first, failed, nothing = Metrics(store).alarm_samples_many(reads)
    assert [v for _, v in first if v is not None]
    assert isinstance(failed, InvalidInput) and nothing == []
