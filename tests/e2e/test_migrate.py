"""Live migration and drain through the REST API and the CLI, on the test driver (a stack of two
hosts of its own) (whose hosts cannot move a guest: the
destination agent defines and starts the definition the source hands over, hostagent/migration.py;
real guests moving with an open SSH session: tests/realguest/test_migration_real.py): who may ask,
what is refused with which field, and that the instance, its disk and its allocation end on the
destination with nothing left on the source."""
import json
import tempfile
import uuid

import pytest

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user, tiny_image
from tests.e2e.test_cli import ok, run


@pytest.fixture(scope="module")
def stack(two_host_stack):
    return two_host_stack


@pytest.fixture(scope="module")
def travel(stack):
    """(admin, user, the two hosts, one running instance of the user)."""
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    user = approved_user(stack.url, admin, f"mig{uuid.uuid4().hex[:6]}")
    flavor = min(user.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    image = tiny_image(user)
    made = user.call("POST", "/instances", 202, json={"name": "traveller", "flavor": flavor["id"],
                                                     "image": image["id"], "key": user.key}).json()
    running = user.wait_for(f"/instances/{made['id']}", lambda r: r.json()["state"] in ("running", "error"),
                            timeout=60).json()
    assert running["state"] == "running", running
    yield admin, user, list(stack.hosts), running
    user.call("DELETE", f"/instances/{made['id']}")
    user.wait_for(f"/instances/{made['id']}", lambda r: r.status_code == 404, timeout=60)


def allocated(admin, host):
    row = next(h for h in admin.call("GET", "/hosts", 200).json() if h["name"] == host)
    return row["instances"], row["allocated_memory_mib"]


def test_only_admins_migrate_and_bad_destinations_name_the_field(travel):
    admin, user, hosts, inst = travel
    path = f"/instances/{inst['id']}/migrate"
    assert user.call("POST", path, json={}).status_code == 403
    refused = admin.call("POST", path, 400, json={"host": inst["host"]}).json()
    assert "host" in refused["error"]["fields"], refused
    assert "host" in admin.call("POST", path, 404, json={"host": "no-such-host"}).json()["error"]["fields"]
    assert "host" in admin.call("POST", path, 400, json={"host": "not a host name!"}).json()["error"]["fields"]
    other = next(h for h in hosts if h != inst["host"])
    admin.call("POST", f"/hosts/{other}/disable", 200)
    try:
        refused = admin.call("POST", path, 409, json={"host": other}).json()
        assert refused["error"]["fields"]["host"] == ["is disabled"], refused
    finally:
        admin.call("POST", f"/hosts/{other}/enable", 200)
    assert user.call("GET", f"/instances/{inst['id']}", 200).json()["state"] == "running"


def test_migration_moves_the_instance_its_disk_and_its_allocation(travel):
    admin, user, hosts, inst = travel
    source = inst["host"]
    destination = next(h for h in hosts if h != source)
    before = {h: allocated(admin, h) for h in hosts}
    accepted = admin.call("POST", f"/instances/{inst['id']}/migrate", 202, json={}).json()
    assert accepted["state"] == "migrating" and accepted["migrating_to"] == destination, accepted
    # Asked again while under way: the same, nothing more.
    assert admin.call("POST", f"/instances/{inst['id']}/migrate", 202, json={}).json()["state"] in (
        "migrating", "running")
    moved = user.wait_for(f"/instances/{inst['id']}", lambda r: r.json()["state"] != "migrating", timeout=60).json()
    assert moved["state"] == "running" and moved["host"] == destination and moved["migrating_to"] is None, moved
    assert (moved["ip"], moved["mac"]) == (inst["ip"], inst["mac"])
    memory = inst["memory_mib"]
    assert allocated(admin, source) == (before[source][0] - 1, before[source][1] - memory)
    assert allocated(admin, destination) == (before[destination][0] + 1, before[destination][1] + memory)
    assert [i["id"] for i in admin.call("GET", f"/hosts/{destination}", 200).json()["instances_on_host"]] == [
        inst["id"]]
    assert inst["id"] not in [i["id"] for i in admin.call("GET", f"/hosts/{source}", 200).json()["instances_on_host"]]
    [action] = [a for a in admin.call("GET", f"/instances/{inst['id']}/actions", 200).json() if a["action"] == "migrate"]
    assert action["result"] == "success" and action["message"].startswith(f"{source} -> {destination}"), action
    # It still works where it is: a stop goes to the destination's agent. Stopped, it migrates
    # back cold and arrives stopped; started, it runs there.
    user.call("POST", f"/instances/{inst['id']}/stop", 202)
    user.wait_for(f"/instances/{inst['id']}", lambda r: r.json()["state"] == "stopped", timeout=60)
    admin.call("POST", f"/instances/{inst['id']}/migrate", 202, json={"host": source})
    cold = user.wait_for(f"/instances/{inst['id']}", lambda r: r.json()["state"] != "migrating", timeout=60).json()
    assert (cold["state"], cold["host"], cold["reason"]) == ("stopped", source, None), cold
    user.call("POST", f"/instances/{inst['id']}/start", 202)
    started = user.wait_for(f"/instances/{inst['id']}", lambda r: r.json()["state"] == "running", timeout=60).json()
    assert started["host"] == source
    # Reconcile finds nothing of it left on the source, and the instance as it is on the destination.
    report = admin.call("POST", "/admin/reconcile", 200).json()
    assert not [f for f in report["findings"] if f["subject"] == inst["id"] or inst["id"] in f["subject"]], report


def test_drain_moves_the_running_guests_away_then_disables_the_host(stack, travel):
    """Through the installed command: `labcloud instance migrate` back, then `labcloud host drain
    --wait` on the host it is on: it and a stopped instance there move (the stopped one cold), the
    host ends disabled."""
    admin, user, hosts, inst = travel
    home = tempfile.mkdtemp(prefix="labcloud-cli-drain-")
    ok(run(home, "login", "--url", stack.url, "--username", "admin", "--password-stdin",
           stdin=ADMIN_PASSWORD + "\n"))
    here = user.call("GET", f"/instances/{inst['id']}", 200).json()["host"]
    back = next(h for h in hosts if h != here)
    moved = json.loads(ok(run(home, "instance", "migrate", inst["id"], "--host", back, "--wait", "--json")))
    assert (moved["state"], moved["host"]) == ("running", back), moved
    # A stopped instance of the user on the same host: it moves too, stopped.
    flavor = min(user.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    image = tiny_image(user)
    others = [h for h in hosts if h != back]
    for host in others:
        admin.call("POST", f"/hosts/{host}/disable", 200)
    try:
        parked = user.call("POST", "/instances", 202, json={"name": "parked", "flavor": flavor["id"],
                                                           "image": image["id"], "key": user.key}).json()
        user.wait_for(f"/instances/{parked['id']}", lambda r: r.json()["state"] == "running", timeout=60)
    finally:
        for host in others:
            admin.call("POST", f"/hosts/{host}/enable", 200)
    user.call("POST", f"/instances/{parked['id']}/stop", 202)
    user.wait_for(f"/instances/{parked['id']}", lambda r: r.json()["state"] == "stopped", timeout=60)
    try:
        out = ok(run(home, "host", "drain", back, "--wait"))
        assert out.splitlines()[0] == f"{back}: draining, 2 migrating away", out
        assert out.splitlines()[-1] == f"{back}: disabled", out
        now = user.call("GET", f"/instances/{inst['id']}", 200).json()
        assert now["state"] == "running" and now["host"] != back, now
        stopped = user.call("GET", f"/instances/{parked['id']}", 200).json()
        assert stopped["state"] == "stopped" and stopped["host"] != back, stopped
        assert admin.call("GET", f"/hosts/{back}", 200).json()["status"] == "disabled"
        # Drained again: nothing to move, it stays disabled... once enabled, drain has nothing to wait for.
        admin.call("POST", f"/hosts/{back}/enable", 200)
        again = admin.call("POST", f"/hosts/{back}/drain", 202).json()
        assert (again["status"], again["migrations_started"], again["refused"]) == ("disabled", [], {}), again
    finally:
        admin.call("POST", f"/hosts/{back}/enable", 200)
        user.call("DELETE", f"/instances/{parked['id']}", 202)
