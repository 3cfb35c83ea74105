"""The instance lifecycle over HTTP against the whole system as processes (libvirt's test driver):
delete from every state ends in `deleted` (GET answers 404) with nothing left on the host (asked of
the host agent itself); names and host capacity count stopped instances; reconcile repairs what was
changed behind labcloud's back; a quiet host shows its instances `host_down` until it returns."""
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user
from tests.e2e.conftest import FAST_TIMERS, stack_on

# Short enough for a test, long enough that a working saga is never mistaken for a stuck one.
LIFECYCLE_TIMERS = dict(FAST_TIMERS, HOST_STALE_AFTER="4", HOST_CHECK_INTERVAL="1", ORPHAN_GRACE="2",
                        DELETE_RETRY_AFTER="1", RECONCILE_INTERVAL="3600")


@pytest.fixture(scope="module")
def stack(rabbit_node, vhosts):
    with stack_on(rabbit_node, vhosts, LIFECYCLE_TIMERS) as running:
        yield running


@pytest.fixture(scope="module")
def admin(stack):
    return Api(stack.url).login("admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def user(stack, admin):
    return approved_user(stack.url, admin, f"u{uuid.uuid4().hex[:6]}")


@pytest.fixture
def rpc(stack):
    with ClusterRpcProxy({"AMQP_URI": stack.amqp_uri}, timeout=30) as proxy:
        yield proxy


def flavor_id(api, name):
    return next(f["id"] for f in api.call("GET", "/flavors", 200).json() if f["name"] == name)


def create(api, name, flavor="small", image=1, wait=True):
    inst = api.call("POST", "/instances", 202, json={"name": name, "flavor": flavor_id(api, flavor),
                                                     "image": image, "key": api.key}).json()
    if wait:
        inst = wait_state(api, inst["id"], ("running", "error"))
    return inst


def wait_state(api, instance_id, states, timeout=30):
    return api.wait_for(f"/instances/{instance_id}", lambda r: r.status_code == 200 and r.json()["state"] in states,
                        timeout=timeout).json()


def wait_deleted(api, instance_id, timeout=10):
    """Deleted means: GET answers 404, and the list shows it only with include_deleted."""
    api.wait_for(f"/instances/{instance_id}", lambda r: r.status_code == 404, timeout=timeout)
    assert instance_id not in [i["id"] for i in api.call("GET", "/instances", 200).json()]
    listed = {i["id"]: i for i in api.call("GET", "/instances?include_deleted=true", 200).json()}
    assert listed[instance_id]["state"] == "deleted"


def left_on_host(rpc, instance_ids, host="host1"):
    """Everything the host agent still holds for these instances, and addresses still allocated."""
    inventory = rpc[f"hostagent_{host}"].get_inventory()
    held = []
    for instance_id in instance_ids:
        held += [("domain", d["instance_id"]) for d in inventory["domains"] if d["instance_id"] == instance_id]
        held += [("volume", v["name"]) for v in inventory["volumes"] if instance_id in v["name"]]
        held += [("dhcp", e["name"]) for e in inventory["dhcp_entries"] if e["instance_id"] == instance_id]
        held += [("forward", f["port"]) for f in inventory["forwards"] if f["instance_id"] == instance_id]
        held += [("console", c) for c in inventory["console_logs"] if c == instance_id]
        if rpc.network.get_address(instance_id) is not None:
            held.append(("address", instance_id))
    return held


def test_delete_from_every_state_leaves_nothing(user, rpc):
    deleted = []

    def delete_now(inst, expected_before):
        assert inst["state"] in expected_before, inst
        answer = user.call("DELETE", f"/instances/{inst['id']}", 202).json()
        assert answer["state"] in ("deleting", "deleted")
        deleted.append(inst["id"])

    # pending/building: deleted as soon as it is accepted
    delete_now(create(user, "d-pending", wait=False), ("pending",))
    running = create(user, "d-running")
    delete_now(running, ("running",))
    for action, transitional in (("stop", "stopping"), ("reboot", "rebooting")):
        inst = create(user, f"d-{transitional}")
        delete_now(user.call("POST", f"/instances/{inst['id']}/{action}", 202).json(), (transitional,))
    stopped = create(user, "d-stopped")
    user.call("POST", f"/instances/{stopped['id']}/stop", 202)
    stopped = wait_state(user, stopped["id"], ("stopped",))
    starting = create(user, "d-starting")
    user.call("POST", f"/instances/{starting['id']}/stop", 202)
    wait_state(user, starting["id"], ("stopped",))
    delete_now(user.call("POST", f"/instances/{starting['id']}/start", 202).json(), ("starting",))
    delete_now(stopped, ("stopped",))
    for instance_id in deleted:
        wait_deleted(user, instance_id)
    assert left_on_host(rpc, deleted) == []
    log = user.call("GET", f"/instances/{running['id']}/actions", 200).json()
    assert [(a["action"], a["result"]) for a in log] == [("create", "success"), ("delete", "success")]
    assert log[0]["username"] == log[1]["username"] == user.username


def test_delete_of_an_instance_in_error_leaves_nothing(user, admin, rpc, tmp_path):
    # The host's pool filled by a data volume: the instance's root disk does not fit, the create
    # fails on the host. (A flavor below its image's minimum disk is refused at create, 400.)
    [pool] = [p for p in admin.call("GET", "/storage-pools", 200).json() if p["host"] == "host1"]
    filler = user.call("POST", "/volumes", 201, json={
        "name": f"filler-{uuid.uuid4().hex[:6]}", "size_gib": pool["available_bytes"] >> 30}).json()
    try:
        inst = create(user, "d-error")
        assert inst["state"] == "error" and inst["reason"], inst
        user.call("DELETE", f"/instances/{inst['id']}", 202)
        wait_deleted(user, inst["id"])
        assert left_on_host(rpc, [inst["id"]]) == []
    finally:
        user.call("DELETE", f"/volumes/{filler['id']}", 200)


def test_names_and_host_capacity_count_stopped_instances(user, admin, rpc):
    first = create(user, "keeper")
    user.call("POST", f"/instances/{first['id']}/stop", 202)
    wait_state(user, first["id"], ("stopped",))
    taken = user.call("POST", "/instances", 409, json={"name": "keeper", "flavor": flavor_id(user, "small"),
                                                       "image": 1, "key": user.key}).json()
    assert taken["error"]["fields"] == {"name": ["already in use"]}

    # Fill the host with large instances; a stopped one still holds its place.
    [host] = rpc.instances.list_hosts()
    large = next(f for f in user.call("GET", "/flavors", 200).json() if f["name"] == "large")
    room = (host["memory_mib"] - host["used_memory_mib"]) // large["memory_mib"]
    filling = [create(user, f"fill-{n}", "large") for n in range(room)]
    assert all(i["state"] == "running" for i in filling)
    user.call("POST", f"/instances/{filling[0]['id']}/stop", 202)
    wait_state(user, filling[0]["id"], ("stopped",))
    extra = create(user, "one-too-many", "large")
    assert extra["state"] == "error" and "no host has room" in extra["reason"], extra
    # Starting the stopped one again cannot overfill the host: it never gave its place away.
    user.call("POST", f"/instances/{filling[0]['id']}/start", 202)
    assert wait_state(user, filling[0]["id"], ("running", "error"))["state"] == "running"
    ids = [first["id"], extra["id"]] + [i["id"] for i in filling]
    for instance_id in ids:
        user.call("DELETE", f"/instances/{instance_id}", 202)
    for instance_id in ids:
        wait_deleted(user, instance_id)
    assert left_on_host(rpc, ids) == []
    again = create(user, "keeper")  # the name is free once deleted
    assert again["state"] == "running"
    user.call("DELETE", f"/instances/{again['id']}", 202)
    wait_deleted(user, again["id"])


def test_reconcile_repairs_what_changed_behind_our_back(user, admin, rpc, stack):
    drifted = create(user, "drifted")
    lost = create(user, "lost")
    # Behind labcloud's back: power one guest off and destroy another's domain, through the agent
    # as an admin's virsh would (the test driver lives in the agent's process).
    agent = rpc["hostagent_host1"]
    agent.stop_domain({"instance_id": drifted["id"], "timeout": 1})
    agent.destroy_domain({"instance_id": lost["id"]})
    # Orphans: a domain and a disk no instance owns (a create whose record was lost).
    stray = str(uuid.uuid4())
    volume = agent.create_volume({"name": f"root-{stray}.qcow2", "capacity_bytes": 1 << 20, "format": "qcow2"})
    agent.create_domain({"instance_id": stray, "name": f"lc-{stray}", "vcpus": 1, "memory_mib": 64,
                         "cpu_weight": 256, "cpu_cap": 0, "disk_path": volume["path"],
                         "mac": "aa:00:0a:63:03:fe", "ip": "10.99.3.254"})

    report = admin.call("POST", "/admin/reconcile", 200).json()
    assert report["hosts"] == ["host1"] and report["trigger"] == "admin"
    actions = {(f["subject"], f["action"]) for f in report["findings"]}
    assert (lost["id"], "lost_domain") in actions
    assert {(f"root-{stray}.qcow2", "orphan_seen"), (stray, "orphan_seen")} <= actions
    assert wait_state(user, lost["id"], ("error",))["reason"] == "host host1 has no domain for this instance"
    # The stop's own event already moved `drifted`; reconcile agrees with it.
    assert wait_state(user, drifted["id"], ("stopped",))["state"] == "stopped"

    time.sleep(2.1)  # ORPHAN_GRACE
    report = admin.call("POST", "/admin/reconcile", 200).json()
    removed = {(f["subject"], f["action"]) for f in report["findings"]}
    assert {(f"root-{stray}.qcow2", "orphan_removed"), (stray, "orphan_removed")} <= removed
    assert left_on_host(rpc, [stray]) == []
    assert admin.call("GET", "/admin/reconcile?limit=2", 200).json()[0]["id"] == report["id"]
    user.call("GET", "/admin/reconcile", 403)
    repairs = [a for a in user.call("GET", f"/instances/{lost['id']}/actions", 200).json() if a["action"] == "reconcile"]
    assert repairs and repairs[0]["user_id"] is None and "no domain" in repairs[0]["message"]
    for inst in (drifted, lost):
        user.call("DELETE", f"/instances/{inst['id']}", 202)
        wait_deleted(user, inst["id"])
    assert left_on_host(rpc, [drifted["id"], lost["id"]]) == []


def labcloud(stack, api, *argv):
    env = {**os.environ, "LABCLOUD_URL": stack.url, "LABCLOUD_TOKEN": api.token}
    return subprocess.run([sys.executable, "-m", "labcloud.cli", *argv], capture_output=True, text=True,
                          env=env, timeout=60)


def test_cli_shows_the_action_log_and_runs_reconcile(stack, user, admin):
    inst = create(user, "cli-log")
    user.call("DELETE", f"/instances/{inst['id']}", 202)
    wait_deleted(user, inst["id"])
    shown = labcloud(stack, user, "instance", "actions", "cli-log")  # deleted: still has its log
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["REQUESTED", "ACTION", "BY", "RESULT", "FINISHED", "MESSAGE"]
    assert [line.split()[1:4] for line in lines[1:]] == [["create", user.username, "success"],
                                                         ["delete", user.username, "success"]]
    missing = labcloud(stack, user, "instance", "actions", "no-such-vm")
    assert missing.returncode == 1 and "no instance named no-such-vm" in missing.stderr

    ran = labcloud(stack, admin, "admin", "reconcile")
    assert ran.returncode == 0, ran.stderr
    assert "(admin," in ran.stdout and "hosts host1" in ran.stdout
    refused = labcloud(stack, user, "admin", "reconcile")
    assert refused.returncode == 1 and "403" in refused.stderr
    listed = labcloud(stack, admin, "admin", "reconcile", "--reports", "1")
    assert listed.returncode == 0 and listed.stdout.startswith("reconcile ")


def test_a_quiet_host_shows_host_down_and_a_delete_waits_for_it(user, rpc, stack):
    stays = create(user, "stays")
    goes = create(user, "goes")
    agent = stack.processes["hostagent-host1"]
    os.killpg(agent.pid, signal.SIGKILL)  # the host dies (its test-driver guests with it)
    agent.wait(10)
    for inst in (stays, goes):
        down = wait_state(user, inst["id"], ("host_down",), timeout=20)
        assert "has sent no heartbeat since" in down["reason"]
    waiting = user.call("DELETE", f"/instances/{goes['id']}", 202).json()
    assert waiting["state"] == "deleting"
    assert wait_state(user, goes["id"], ("deleting",))["reason"] == "waiting for host host1 to come back"

    stack._spawn("hostagent-host1", [sys.executable, "-m", "hostagent"], stack._host_env("host1"))
    wait_deleted(user, goes["id"], timeout=30)
    # The host came back without its guests (the test driver keeps them in the dead process).
    back = wait_state(user, stays["id"], ("error",), timeout=20)
    assert back["reason"] == "host host1 has no domain for this instance"
    user.call("DELETE", f"/instances/{stays['id']}", 202)
    wait_deleted(user, stays["id"])
    assert left_on_host(rpc, [stays["id"], goes["id"]]) == []
