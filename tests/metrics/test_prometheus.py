"""Prometheus exposition scraped over HTTP from running services: the process metrics every
service and host agent serves (common/prometheus.py) and the metrics service's VM and host
metrics (services/metrics/exposition.py)."""
import time
import uuid

import pytest
import requests
from nameko.standalone.rpc import ServiceRpcProxy
from prometheus_client.parser import text_string_to_metric_families

from common.errors import InvalidInput
from hostagent.service import make_service
from labcloud.rabbit import free_port
from services.metrics.service import MetricsService
from tests.metrics.test_service import domain, host_sample, iso, publish


def scrape(port):
    answer = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_service_exposes_its_calls_and_the_vms(container_factory, service_config, migrated_database, tmp_path):
    port = free_port()
    config = service_config(METRICS_DIR=str(tmp_path / "metrics"), STEP=1, PROMETHEUS_PORT=port,
                            DATABASE_URL=migrated_database("services.metrics"))
    container = container_factory(MetricsService, config)
    container.start()
    vm = str(uuid.uuid4())
    t0 = int(time.time()) - 6
    for i in range(6):
        publish(container, config, {"host": "h1", "at": iso(t0 + i), "domains": [domain(vm, i)],
                                    "host_sample": host_sample(i)})
    with ServiceRpcProxy("metrics", config) as rpc:
        rpc.get_instance_metrics(vm, 60)
        with pytest.raises(InvalidInput):
            rpc.get_instance_metrics("nope", 60)
    samples = scrape(port)
    rpc_labels = {"service": "metrics", "kind": "rpc", "method": "get_instance_metrics"}
    assert value(samples, "labcloud_service_calls_total", **rpc_labels) == 2
    assert value(samples, "labcloud_service_errors_total", error="InvalidInput", **rpc_labels) == 1
    assert value(samples, "labcloud_service_call_duration_seconds_count", **rpc_labels) == 2
    assert value(samples, "labcloud_service_calls_total", service="metrics", kind="event",
                 method="handle_domain_stats") == 6
    assert value(samples, "labcloud_service_workers_busy", service="metrics") == 0
    assert value(samples, "labcloud_service_max_workers", service="metrics") > 0
    # The VMs' and hosts' newest values, in their units (cpu 0..1, rates per second).
    assert value(samples, "labcloud_vm_cpu_utilisation", instance_id=vm, vcpu="0") == pytest.approx(0.5)
    assert value(samples, "labcloud_vm_network_rx_bytes_per_second", instance_id=vm, vif="0") == pytest.approx(1000)
    assert value(samples, "labcloud_vm_disk_write_bytes_per_second", instance_id=vm, device="vda") == pytest.approx(2048)
    assert value(samples, "labcloud_vm_memory_bytes", instance_id=vm) == 1024 ** 3
    assert value(samples, "labcloud_host_load1", host="h1") == pytest.approx(0.25)
    assert value(samples, "labcloud_host_cpu_utilisation", host="h1", cpu="0") == pytest.approx(1.0)


def test_a_host_agent_exposes_its_calls(container_factory, service_config, tmp_path):
    port = free_port()
    pool = f"pm-{uuid.uuid4().hex[:8]}"
    config = service_config(LIBVIRT_URI="test:///default", POOL_NAME=pool, POOL_PATH=f"/labcloud-test/{pool}",
                            HEARTBEAT_INTERVAL=0.3, STATS_INTERVAL=0.3, CONSOLE_DIR=str(tmp_path / "console"),
                            PROMETHEUS_PORT=port)
    container = container_factory(make_service("pm1"), config)
    container.start()
    deadline = time.time() + 10
    while True:
        samples = scrape(port)
        timers = value(samples, "labcloud_service_calls_total", service="hostagent_pm1", kind="timer",
                       method="domain_stats")
        if timers and timers >= 2:
            break
        assert time.time() < deadline, "no domain_stats timer calls counted"
        time.sleep(0.3)
    with ServiceRpcProxy("hostagent_pm1", config) as host:
        host.get_host_info()
    assert value(scrape(port), "labcloud_service_calls_total", service="hostagent_pm1", kind="rpc",
                 method="get_host_info") == 1


def test_off_unless_a_port_is_set(container_factory, service_config, migrated_database, tmp_path):
    config = service_config(METRICS_DIR=str(tmp_path / "metrics"), DATABASE_URL=migrated_database("services.metrics"))
    container = container_factory(MetricsService, config)
    container.start()
    [provider] = [d for d in container.dependencies if d.attr_name == "prometheus"]
    assert provider.listener.port is None
