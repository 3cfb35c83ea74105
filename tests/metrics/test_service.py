"""The metrics service over the real RabbitMQ node: host agents' events in, RPC out."""
import datetime as dt
import json
import time
import uuid
import xml.etree.ElementTree as ET

import pytest
from prometheus_client import REGISTRY
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter

from common.clock import isoformat
from common.errors import InvalidInput, NotFound
from services.metrics.service import MetricsService


@pytest.fixture
def metrics(container_factory, service_config, migrated_database, tmp_path):
    config = service_config(METRICS_DIR=str(tmp_path / "metrics"), STEP=1, METRICS_RETENTION=0,
                            DATABASE_URL=migrated_database("services.metrics"))
    container = container_factory(MetricsService, config)
    container.start()
    return container, config


def domain(instance_id, i, cpu_per_s=0.5e9, **overrides):
    """Counters of a 1-vCPU domain that has run i seconds at half a CPU and 1000 B/s received,
    as the host agent sends them (totals and per device)."""
    entry = {"instance_id": instance_id, "state": "running", "vcpus": 1,
             "cpu_time_ns": int(i * cpu_per_s), "vcpu_time_ns": [int(i * cpu_per_s)],
             "memory_kib": 1024 * 1024, "memory_internal_free_kib": 1024,
             "disk_read_bytes": 0, "disk_write_bytes": i * 2048,
             "disks": [{"device": "vda", "read_bytes": 0, "write_bytes": i * 2048,
                        "read_reqs": 0, "write_reqs": i}],
             "net_rx_bytes": i * 1000, "net_tx_bytes": i * 10,
             "nics": [{"index": 0, "rx_bytes": i * 1000, "tx_bytes": i * 10}]}
    entry.update(overrides)
    return entry


def host_sample(i):
    return {"cpu_busy_ns": [i * 10**9], "memory_total_kib": 4096, "memory_free_kib": 1024,
            "load_1m": 0.25, "interfaces": [{"name": "eth0", "rx_bytes": i, "tx_bytes": i}]}


def publish(container, config, payload, source="hostagent", event="domain_stats"):
    handler = {"domain_stats": "handle_domain_stats",
               "instance_deleted": "handle_instance_deleted"}[event]
    with entrypoint_waiter(container, handler, timeout=10):
        event_dispatcher(config)(source, event, payload)


def iso(ts):
    """How the host agent sends `at`: marshmallow DateTime, UTC."""
    return isoformat(dt.datetime.fromtimestamp(ts, dt.timezone.utc).replace(tzinfo=None))


def test_domain_stats_become_series_and_deletion_removes_them(metrics):
    container, config = metrics
    vm, other = str(uuid.uuid4()), str(uuid.uuid4())
    t0 = int(time.time()) - 12
    for i in range(11):
        domains = [domain(vm, i), domain(other, i, cpu_per_s=0.25e9)]
        if i == 5:
            # A malformed entry costs only itself, not the rest of the batch.
            domains.insert(0, {"instance_id": "../../etc/passwd", "vcpus": "many"})
        # `at` as ISO-8601 (the host agent's format); a field a newer agent adds is ignored.
        publish(container, config, {"host": "h1", "at": iso(t0 + i), "seq": i, "domains": domains,
                                    "host_sample": host_sample(i)})
    # at-least-once: the same event again changes nothing.
    stale_before = rejected("stale")
    publish(container, config, {"host": "h1", "at": iso(t0 + 10),
                                "domains": [domain(vm, 10, cpu_per_s=10**14)]})
    assert rejected("stale") == stale_before + 1

    with ServiceRpcProxy("metrics", config) as rpc:
        result = rpc.get_instance_metrics(vm, 60)
        assert result["instance_id"] == vm and result["step"] == 1
        assert set(result["series"]) == {"cpu_percent", "memory_mib", "disk_read_bps",
                                         "disk_write_bps", "net_rx_bps", "net_tx_bps"}
        cpu = dict((ts, v) for ts, v in result["series"]["cpu_percent"])
        rx = dict((ts, v) for ts, v in result["series"]["net_rx_bps"])
        memory = dict((ts, v) for ts, v in result["series"]["memory_mib"])
        for ts in range(t0 + 1, t0 + 11):
            assert cpu[ts] == pytest.approx(50.0, abs=0.01)
            assert rx[ts] == pytest.approx(1000)
            assert memory[ts] == pytest.approx(1024)
        assert len(cpu) == len(rx) == len(memory) > 0
        other_cpu = dict(rpc.get_instance_metrics(other, 60)["series"]["cpu_percent"])
        assert other_cpu[t0 + 5] == pytest.approx(25.0, abs=0.01)
        assert other_cpu[t0 + 6] == pytest.approx(25.0, abs=0.01)

        xml = rpc.rrd_updates(t0, vm)
        root = ET.fromstring(xml.split("\n", 1)[1])
        assert root.find("meta/columns").text == "27"  # 9 data sources, AVERAGE MIN MAX
        assert root.find("meta/legend/entry").text == f"AVERAGE:vm:{vm}:memory"
        assert len(root.findall("data/row")) == int(root.find("meta/rows").text) > 0
        everyone = ET.fromstring(rpc.rrd_updates(t0).split("\n", 1)[1])
        assert everyone.find("meta/columns").text == "54"
        hosts = json.loads(rpc.rrd_updates(t0, None, None, "AVERAGE", True, True))
        assert "AVERAGE:host:h1:loadavg" in hosts["meta"]["legend"]
        assert rpc.vm_rrd(vm).startswith("<?xml")

        # instances.instance_deleted carries an InstanceSchema; only `id` matters here.
        publish(container, config, {"id": vm, "name": "web", "state": "deleted"},
                source="instances", event="instance_deleted")
        with pytest.raises(NotFound):
            rpc.get_instance_metrics(vm, 60)
        assert rpc.get_instance_metrics(other, 60)["instance_id"] == other
        # A late, redelivered sample does not bring the deleted instance back.
        publish(container, config, {"host": "h1", "at": iso(t0 + 11), "domains": [domain(vm, 11)]})
        with pytest.raises(NotFound):
            rpc.get_instance_metrics(vm, 60)


def rejected(reason):
    return REGISTRY.get_sample_value("labcloud_metrics_samples_rejected_total",
                                     {"reason": reason}) or 0


def test_bad_events_are_dropped_without_breaking_the_service(metrics):
    container, config = metrics
    vm = str(uuid.uuid4())
    invalid_before = rejected("invalid")
    publish(container, config, {"host": "h1", "domains": [domain(vm, 0)]})  # no `at`
    publish(container, config, "not even a dict")
    publish(container, config, {"id": "nope"}, source="instances", event="instance_deleted")
    assert rejected("invalid") == invalid_before + 2
    with ServiceRpcProxy("metrics", config) as rpc:
        with pytest.raises(NotFound):
            rpc.get_instance_metrics(vm, 60)
    publish(container, config, {"host": "h1", "at": iso(time.time()), "domains": [domain(vm, 0)]})
    with ServiceRpcProxy("metrics", config) as rpc:
        assert rpc.get_instance_metrics(vm, 60)["instance_id"] == vm


def test_query_validation_names_the_field(metrics):
    _container, config = metrics
    with ServiceRpcProxy("metrics", config) as rpc:
        for seconds in (59, 86401, "soon"):
            with pytest.raises(InvalidInput) as err:
                rpc.get_instance_metrics(str(uuid.uuid4()), seconds)
            assert set(err.value.fields) == {"seconds"}
        with pytest.raises(InvalidInput) as err:
            rpc.get_instance_metrics("../../etc/passwd", 3600)
        assert set(err.value.fields) == {"instance_id"}
        with pytest.raises(NotFound):
            rpc.get_instance_metrics(str(uuid.uuid4()))
        with pytest.raises(InvalidInput) as err:
            rpc.rrd_updates("yesterday")
        assert "start" in err.value.fields
        with pytest.raises(InvalidInput) as err:
            rpc.rrd_updates(0, None, 0, "LAST")
        assert set(err.value.fields) == {"interval", "cf"}
        with pytest.raises(InvalidInput) as err:
            rpc.vm_rrd("x")
        assert set(err.value.fields) == {"instance_id"}


def test_deleted_instances_metrics_stay_for_the_retention_then_the_timer_purges(
        container_factory, service_config, migrated_database, tmp_path):
    config = service_config(METRICS_DIR=str(tmp_path / "metrics"), STEP=1, METRICS_RETENTION=2,
                            PURGE_INTERVAL=0.5, DATABASE_URL=migrated_database("services.metrics"))
    container = container_factory(MetricsService, config)
    container.start()
    vm = str(uuid.uuid4())
    t0 = int(time.time()) - 5
    for i in range(3):
        publish(container, config, {"host": "h1", "at": iso(t0 + i), "domains": [domain(vm, i)]})
    publish(container, config, {"id": vm}, source="instances", event="instance_deleted")
    with ServiceRpcProxy("metrics", config) as rpc:
        assert rpc.get_instance_metrics(vm, 60)["instance_id"] == vm  # still readable
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                rpc.get_instance_metrics(vm, 60)
            except NotFound:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the purge timer did not remove the deleted instance's metrics")
    assert not (tmp_path / "metrics" / "vms" / f"{vm}.rrd").exists()
