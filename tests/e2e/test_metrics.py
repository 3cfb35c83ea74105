"""Metrics over HTTP against the whole system as processes: XenServer's /rrd_updates and /vm_rrd
on the gateway (HTTP Basic with labcloud credentials), fed by the host agent's real samples."""
import json
import time
import xml.etree.ElementTree as ET

import pytest
import requests

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user, running_instances, tiny_image
from tests.e2e.portal import Portal

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def world(stack):
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    alice = approved_user(stack.url, admin, f"malice{int(time.time() * 1000) % 10**6}")
    bob = approved_user(stack.url, admin, f"mbob{int(time.time() * 1000) % 10**6}")
    [iid] = running_instances(alice, 1, prefix="graphs")
    alice.wait_for(f"/instances/{iid}/metrics?seconds=300", lambda r: r.status_code == 200 and any(
        v is not None for _, v in r.json()["series"]["cpu_percent"]), timeout=60, interval=0.5)
    return {"url": stack.url, "admin": ("admin", ADMIN_PASSWORD), "alice": (alice.username, alice.password),
            "bob": (bob.username, bob.password), "instance": iid, "alice_api": alice, "bob_api": bob,
            "admin_api": admin}


def get(world, path, who=None, **params):
    auth = world[who] if who else None
    return requests.get(world["url"] + path, params=params, auth=auth, timeout=30)


def parse(text):
    root = ET.fromstring(text.split("\n", 1)[1])
    legend = [e.text for e in root.findall("meta/legend/entry")]
    rows = [(int(r.find("t").text), [v.text for v in r.findall("v")]) for r in root.findall("data/row")]
    return root, legend, rows


def test_rrd_updates_for_the_owner(world):
    iid, start = world["instance"], int(time.time()) - 120
    answer = get(world, "/rrd_updates", "alice", start=start, vm_uuid=iid, cf="AVERAGE")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/xml")
    root, legend, rows = parse(answer.text)
    names = {entry.split(":")[3] for entry in legend}
    assert {"cpu0", "memory", "memory_internal_free", "vbd_vda_read", "vbd_vda_iops_write",
            "vif_0_rx", "vif_0_tx"} <= names
    assert all(entry.startswith(f"AVERAGE:vm:{iid}:") for entry in legend)
    assert int(root.find("meta/rows").text) == len(rows) > 0
    times = [t for t, _ in rows]
    assert times == sorted(times, reverse=True)
    cpu = [float(v) for _t, values in rows for entry, v in zip(legend, values)
           if entry.endswith(":cpu0") and v != "NaN"]
    assert cpu and all(0 <= v <= 1 for v in cpu)
    # Without vm_uuid the owner gets their own VMs only, in JSON with json=true.
    every = get(world, "/rrd_updates", "alice", start=start, json="true")
    assert every.headers["Content-Type"].startswith("application/json")
    doc = every.json()
    assert {e.split(":")[2] for e in doc["meta"]["legend"]} == {iid}
    assert len(doc["data"]) == doc["meta"]["rows"] and {"t", "values"} <= set(doc["data"][0])


def test_who_may_read_what(world):
    iid, start = world["instance"], int(time.time()) - 60
    anonymous = get(world, "/rrd_updates", start=start)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
    wrong = requests.get(world["url"] + "/rrd_updates", params={"start": start}, timeout=30,
                         auth=(world["alice"][0], "not the password"))
    assert wrong.status_code == 401
    assert get(world, "/rrd_updates", "bob", start=start, vm_uuid=iid).status_code == 404
    bobs = get(world, "/rrd_updates", "bob", start=start).text
    assert iid not in bobs
    refused = get(world, "/rrd_updates", "alice", start=start, host="true")
    assert refused.status_code == 403 and "host" in refused.json()["error"]["fields"]
    hosts = parse(get(world, "/rrd_updates", "admin", start=start, host="true", cf="MAX").text)[1]
    assert "MAX:host:host1:loadavg" in hosts and f"MAX:vm:{iid}:cpu0" in hosts
    assert "MAX:host:host1:cpu0" in hosts
    assert get(world, "/vm_rrd", "bob", uuid=iid).status_code == 404


def test_bad_parameters_name_the_field(world):
    for params, field in (({}, "start"), ({"start": "soon"}, "start"), ({"start": 1, "cf": "LAST"}, "cf"),
                          ({"start": 1, "interval": 0}, "interval"), ({"start": 1, "vm_uuid": "x"}, "vm_uuid"),
                          ({"start": 1, "json": "maybe"}, "json")):
        answer = get(world, "/rrd_updates", "alice", **params)
        assert answer.status_code == 400 and field in answer.json()["error"]["fields"], (params, answer.text)
    answer = get(world, "/vm_rrd", "alice")
    assert answer.status_code == 400 and "uuid" in answer.json()["error"]["fields"]


def test_vm_rrd_is_the_whole_database(world):
    answer = get(world, "/vm_rrd", "alice", uuid=world["instance"])
    assert answer.status_code == 200
    text = answer.text
    root = ET.fromstring(text[text.index("<rrd>"):])
    assert [ds.find("name").text.strip() for ds in root.findall("ds")][:2] == ["memory", "memory_int_free"]
    assert len(root.findall("rra")) == 12
    assert json.loads(get(world, "/api/v1/openapi.json").text)["paths"]["/rrd_updates"]["get"][
        "security"] == [{"basicAuth": []}]


def bearer(world, who, path, **params):
    return world[f"{who}_api"].http.get(world["url"] + path, params=params, timeout=30)


def test_graphs_over_rest(world):
    iid = world["instance"]
    for metric in ("cpu", "memory", "disk", "network"):
        answer = bearer(world, "alice", f"/api/v1/instances/{iid}/graphs/{metric}.png", period="1h")
        assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/png"
        assert answer.content[:8] == PNG_SIGNATURE and len(answer.content) > 1000
    assert bearer(world, "alice", f"/api/v1/instances/{iid}/graphs/cpu.png", period="1w").status_code == 200
    bad = bearer(world, "alice", f"/api/v1/instances/{iid}/graphs/gpu.png")
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"metric"}
    bad = bearer(world, "alice", f"/api/v1/instances/{iid}/graphs/cpu.png", period="1y")
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"period"}
    assert bearer(world, "bob", f"/api/v1/instances/{iid}/graphs/cpu.png").status_code == 404
    assert bearer(world, "alice", "/api/v1/hosts/host1/graphs/cpu.png").status_code == 403
    host = bearer(world, "admin", "/api/v1/hosts/host1/graphs/load.png", period="1d")
    assert host.status_code == 200 and host.content[:8] == PNG_SIGNATURE
    assert bearer(world, "admin", "/api/v1/hosts/nohost/graphs/cpu.png").status_code == 404


def test_graphs_on_the_portal(world):
    iid = world["instance"]
    alice = Portal(world["url"], world["alice_api"].token)
    _response, page = alice.get(f"/instances/{iid}?period=1d")
    images = [img.get("src") for img in page.by_id("graphs").find_all("img")]
    assert images == [f"/instances/{iid}/graphs/{m}.png?period=1d" for m in ("cpu", "memory", "disk", "network")]
    for src in images:
        answer = alice.http.get(world["url"] + src, timeout=30)
        assert answer.status_code == 200 and answer.content[:8] == PNG_SIGNATURE
    admin = Portal(world["url"], world["admin_api"].token)
    host_images = [img.get("src") for img in admin.get("/admin/hosts/host1")[1].by_id("graphs").find_all("img")]
    assert host_images == [f"/admin/hosts/host1/graphs/{m}.png?period=1h" for m in ("cpu", "memory", "network", "load")]
    assert admin.http.get(world["url"] + host_images[0], timeout=30).content[:8] == PNG_SIGNATURE
    assert alice.http.get(world["url"] + host_images[0], timeout=30).status_code == 403


def test_cli_metrics_table_and_graph(world, tmp_path):
    import os
    import subprocess
    import sys
    labcloud = os.path.join(os.path.dirname(sys.executable), "labcloud")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABCLOUD_")}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"), LABCLOUD_URL=world["url"],
               LABCLOUD_TOKEN=world["alice_api"].token, COLUMNS="200")

    def run(*args):
        return subprocess.run([labcloud, *args], capture_output=True, text=True, timeout=60, env=env)
    table = run("metrics", "graphs-0", "--since", "10m")
    assert table.returncode == 0, table.stderr
    title, header, *rows = [line for line in table.stdout.splitlines() if line.strip()]
    assert title.startswith("graphs-0: every")
    assert header.split() == ["TIME", "CPU_%", "MEMORY_MIB", "DISK_READ_B/S", "DISK_WRITE_B/S",
                              "NET_RX_B/S", "NET_TX_B/S"]
    assert rows and all(len(row.split()) >= 3 for row in rows)
    as_json = json.loads(run("metrics", "graphs-0", "--since", "1h", "--json").stdout)
    assert as_json["instance_id"] == world["instance"]
    written = run("graph", "graphs-0", "cpu", "-o", str(tmp_path / "cpu.png"), "--period", "1d")
    assert written.returncode == 0, written.stderr
    assert (tmp_path / "cpu.png").read_bytes()[:8] == PNG_SIGNATURE
    refused = run("graph", "host1", "cpu", "--host", "-o", str(tmp_path / "host.png"))
    assert refused.returncode == 1 and "administrator" in refused.stderr
    bad = run("metrics", "graphs-0", "--since", "soon")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_the_stack_opens_each_agents_rrd_updates_and_every_prometheus_port(stack, world):
    """What `labcloud run` opens (labcloud/metrics_ports.py): the host agent's XenServer port with the
    credentials kept in the data dir, and a Prometheus port per service process and agent; its
    banner lists them."""
    import os
    import stat
    from labcloud.cli import _running_banner
    from labcloud.metrics_ports import CREDENTIALS_FILE, agent_credentials
    agent = stack.agent_metrics["host1"]
    kept = os.path.join(stack.data_dir, CREDENTIALS_FILE)
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o600 and agent_credentials(stack.data_dir) == agent.auth
    start = int(time.time()) - 60
    assert requests.get(f"{agent.url}/rrd_updates", params={"start": start}, timeout=30).status_code == 401
    answer = requests.get(f"{agent.url}/rrd_updates", params={"start": start, "vm_uuid": world["instance"]},
                          auth=agent.auth, timeout=30)
    assert answer.status_code == 200, answer.text
    _root, legend, rows = parse(answer.text)
    assert f"AVERAGE:vm:{world['instance']}:cpu0" in legend and rows
    assert set(stack.prometheus_ports) == {"accounts", "network", "storage", "instances", "metrics", "hostagent-host1"}
    for name, port in stack.prometheus_ports.items():
        scraped = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
        assert scraped.status_code == 200 and "labcloud_service_calls" in scraped.text, name
    banner = _running_banner(stack)
    assert f"host1: {agent.url}/rrd_updates" in banner and kept in banner and agent.password not in banner
    assert all(f"http://127.0.0.1:{port}/metrics" in banner for port in stack.prometheus_ports.values())


def test_the_portal_says_no_data_yet_before_the_first_sample(stack, world):
    """An instance that never ran (every host disabled: it ends in error) has no samples: its page
    says so instead of showing images that cannot load; the REST graph is still a 404."""
    admin, alice = world["admin_api"], world["alice_api"]
    flavor = min(alice.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    image = tiny_image(alice)
    try:
        for name in stack.hosts:
            admin.call("POST", f"/hosts/{name}/disable", 200)
        made = alice.call("POST", "/instances", 202, json={"name": "never-ran", "flavor": flavor["id"],
                                                            "image": image["id"], "key": alice.key}).json()
        alice.wait_for(f"/instances/{made['id']}", lambda r: r.json()["state"] == "error")
    finally:
        for name in stack.hosts:
            admin.call("POST", f"/hosts/{name}/enable", 200)
    portal = Portal(world["url"], alice.token)
    _response, page = portal.get(f"/instances/{made['id']}")
    graphs = page.by_id("graphs")
    assert graphs.find_all("img") == [] and "No data yet" in page.by_id("graphs-no-data").text()
    assert bearer(world, "alice", f"/api/v1/instances/{made['id']}/graphs/cpu.png").status_code == 404
    # The running instance's page has its images (test_graphs_on_the_portal), and no such text.
    _response, running = portal.get(f"/instances/{world['instance']}")
    assert len(running.by_id("graphs").find_all("img")) == 4 and "No data yet" not in running.by_id("graphs").text()
    alice.call("DELETE", f"/instances/{made['id']}")


def test_graph_availability_over_rpc_reads_as_the_graphs_do(stack, world):
    """metrics.get_graph_availability (the portal's): the graphs' readers only."""
    from nameko.standalone.rpc import ClusterRpcProxy
    from common.errors import Forbidden, InvalidInput, NotFound
    with ClusterRpcProxy({"AMQP_URI": stack.amqp_uri}, timeout=30) as rpc:
        alice, bob, admin = (rpc.accounts.authenticate(world[f"{who}_api"].token) for who in ("alice", "bob", "admin"))
        ask = rpc.metrics.get_graph_availability
        assert ask(alice, {"instance_id": world["instance"]}) == {"available": True}
        with pytest.raises(NotFound):
            ask(bob, {"instance_id": world["instance"]})
        with pytest.raises(Forbidden) as refused:
            ask(alice, {"host": "host1"})
        assert set(refused.value.fields) == {"host"}
        assert ask(admin, {"host": "host1"}) == {"available": True}
        assert ask(admin, {"host": "nohost"}) == {"available": False}
        with pytest.raises(InvalidInput) as bad:
            ask(admin, {"instance_id": world["instance"], "host": "host1"})
        assert set(bad.value.fields) == {"instance_id"}
