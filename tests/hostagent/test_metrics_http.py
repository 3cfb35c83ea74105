"""The host agent's own /rrd_updates and /vm_rrd (hostagent/metrics_http.py), a real agent on
test:///default with a real HTTP port on 127.0.0.1, fed by its own stats timer."""
import time
import uuid
import xml.etree.ElementTree as ET

import pytest
import requests

from common.schemas import load
from hostagent import domains
from hostagent.domain_xml import build_domain_xml
from hostagent.schemas import DomainSpec
from hostagent.service import make_service
from labcloud.rabbit import free_port

AUTH = ("xapi", "s3cret")


@pytest.fixture
def domain(conn):
    spec = load(DomainSpec, {
        "instance_id": str(uuid.uuid4()), "name": f"mh-{uuid.uuid4().hex[:8]}", "vcpus": 2,
        "memory_mib": 128, "cpu_weight": 1024, "cpu_cap": 0,
        "disk_path": "/labcloud-test/root.qcow2", "mac": "aa:00:0a:63:00:19", "ip": "10.99.0.19"})
    domains.create_domain(conn, spec["instance_id"], build_domain_xml(spec, {}, "test:///default"))
    yield spec["instance_id"]
    domains.destroy_domain(conn, spec["instance_id"])


@pytest.fixture
def agent_url(container_factory, service_config, tmp_path):
    port = free_port()
    pool = f"mh-{uuid.uuid4().hex[:8]}"
    config = service_config(LIBVIRT_URI="test:///default", POOL_NAME=pool, POOL_PATH=f"/labcloud-test/{pool}",
                            HEARTBEAT_INTERVAL=60, STATS_INTERVAL=1, CONSOLE_DIR=str(tmp_path / "console"),
                            METRICS_HTTP_PORT=port, METRICS_HTTP_USER=AUTH[0], METRICS_HTTP_PASSWORD=AUTH[1],
                            METRICS_HTTP_DIR=str(tmp_path / "agent-metrics"))
    container = container_factory(make_service("mh1"), config)
    container.start()
    return f"http://127.0.0.1:{port}"


def wait_for_rows(url, params, rows=2, timeout=15):
    deadline = time.time() + timeout
    while True:
        answer = requests.get(url + "/rrd_updates", params=params, auth=AUTH, timeout=10)
        if answer.status_code == 200:
            root = ET.fromstring(answer.text.split("\n", 1)[1])
            known = [r for r in root.findall("data/row") if any(v.text != "NaN" for v in r.findall("v"))]
            if len(known) >= rows:
                return root
        assert time.time() < deadline, answer.text
        time.sleep(0.5)


def test_rrd_updates_of_the_hosts_own_vms(agent_url, domain):
    start = int(time.time()) - 5
    root = wait_for_rows(agent_url, {"start": start, "cf": "AVERAGE", "host": "true"}, rows=2)
    legend = [e.text for e in root.findall("meta/legend/entry")]
    assert f"AVERAGE:vm:{domain}:cpu1" in legend and f"AVERAGE:vm:{domain}:vif_0_rx" in legend
    assert "AVERAGE:host:mh1:loadavg" in legend and "AVERAGE:host:mh1:cpu15" in legend
    times = [int(r.find("t").text) for r in root.findall("data/row")]
    assert times == sorted(times, reverse=True) and root.find("meta/step").text == "1"
    answer = requests.get(agent_url + "/rrd_updates", auth=AUTH, timeout=10,
                          params={"start": start, "vm_uuid": domain, "json": "true"})
    doc = answer.json()
    assert {entry.split(":")[2] for entry in doc["meta"]["legend"]} == {domain}
    dumped = requests.get(agent_url + "/vm_rrd", params={"uuid": domain}, auth=AUTH, timeout=10)
    assert dumped.status_code == 200 and "<rrd>" in dumped.text


def test_credentials_and_bad_parameters(agent_url, domain):
    start = int(time.time()) - 5
    for auth in (None, ("xapi", "wrong"), ("root", AUTH[1])):
        answer = requests.get(agent_url + "/rrd_updates", params={"start": start}, auth=auth, timeout=10)
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Basic")
    answer = requests.get(agent_url + "/rrd_updates", params={"start": "x", "cf": "LAST"}, auth=AUTH, timeout=10)
    assert answer.status_code == 400 and set(answer.json()["error"]["fields"]) == {"start", "cf"}
    answer = requests.get(agent_url + "/vm_rrd", params={"uuid": str(uuid.uuid4())}, auth=AUTH, timeout=10)
    assert answer.status_code == 404
    assert requests.get(agent_url + "/elsewhere", auth=AUTH, timeout=10).status_code == 404
