"""`labcloud host list` (the installed command, as tests/e2e/test_cli.py runs it) against a running
system: an admin sees the stack's hosts, as a table and as the API's JSON; a user is refused in
one line with exit status 1."""
import json
import tempfile
import uuid

import pytest

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user, tiny_image
from tests.e2e.test_cli import ok, run

pytestmark = pytest.mark.e2e


def host_reported_use(hosts, name):
    host = next(h for h in hosts if h["name"] == name)
    return host["memory_free_mib"] > 0 and host["load_1m"] >= 0


def test_host_list_for_an_admin_and_refused_to_a_user(stack):
    home = tempfile.mkdtemp(prefix="labcloud-cli-hosts-")
    ok(run(home, "login", "--url", stack.url, "--username", "admin", "--password-stdin",
           stdin=ADMIN_PASSWORD + "\n"))
    hosts = json.loads(ok(run(home, "host", "list", "--json")))
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    static = ("name", "hypervisor", "vcpus", "memory_mib")  # heartbeats and use move on between calls
    assert [{k: h[k] for k in static} for h in hosts] == [
        {k: h[k] for k in static} for h in admin.call("GET", "/hosts", 200).json()]  # the API's answer
    assert set(stack.hosts) <= {h["name"] for h in hosts}

    lines = ok(run(home, "host", "list")).splitlines()  # piped: plain columns
    assert lines[0].split() == ["NAME", "STATUS", "HYPERVISOR", "VCPUS", "MEMORY_MIB", "DISK_GIB", "INSTANCES",
                                "FREE_MIB", "LOAD", "LAST_HEARTBEAT"]
    assert host_reported_use(hosts, stack.hosts[0])
    row = next(line.split() for line in lines[1:] if line.split()[0] == stack.hosts[0])
    host = next(h for h in hosts if h["name"] == stack.hosts[0])
    # allocated / capacity (size x ratio: 4 vCPUs per CPU, memory 1:1 by default)
    assert row[1] == "enabled" == host["status"] and host["up"]
    assert row[3] == f"{host['allocated_vcpus']}/{host['vcpus'] * 4}"
    assert row[4] == f"{host['allocated_memory_mib']}/{host['memory_mib']}"

    user = approved_user(stack.url, admin, f"hl{uuid.uuid4().hex[:6]}")
    refused = run(home, "host", "list", env={"LABCLOUD_URL": stack.url, "LABCLOUD_TOKEN": user.token})
    assert refused.returncode == 1 and refused.stdout == "", refused.stdout
    assert refused.stderr.startswith("error: ") and "administrator" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_a_disabled_host_takes_nothing_new_and_says_why(stack):
    """Every host disabled: a create ends in error naming the filter; `host show` lists what runs on
    a host; enabled again, creates are placed."""
    home = tempfile.mkdtemp(prefix="labcloud-cli-hosts-")
    ok(run(home, "login", "--url", stack.url, "--username", "admin", "--password-stdin",
           stdin=ADMIN_PASSWORD + "\n"))
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    user = approved_user(stack.url, admin, f"hd{uuid.uuid4().hex[:6]}")
    flavor = min(user.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    image = tiny_image(user)
    body = {"flavor": flavor["id"], "image": image["id"], "key": user.key}
    try:
        for name in stack.hosts:
            assert ok(run(home, "host", "disable", name)).strip() == f"{name}: disabled"
        assert ok(run(home, "host", "disable", stack.hosts[0])).strip() == f"{stack.hosts[0]}: disabled"
        refused = user.call("POST", "/instances", 202, json=dict(body, name="nowhere")).json()
        failed = user.wait_for(f"/instances/{refused['id']}", lambda r: r.json()["state"] == "error").json()
        assert "disabled" in failed["reason"] and "(the disabled filter removed the last)" in failed["reason"], failed
    finally:
        for name in stack.hosts:
            run(home, "host", "enable", name)
    assert {h["status"] for h in admin.call("GET", "/hosts", 200).json() if h["name"] in stack.hosts} == {"enabled"}
    placed = user.call("POST", "/instances", 202, json=dict(body, name="somewhere")).json()
    running = user.wait_for(f"/instances/{placed['id']}", lambda r: r.json()["state"] == "running").json()
    shown = json.loads(ok(run(home, "host", "show", running["host"], "--json")))
    assert running["id"] in {i["id"] for i in shown["instances_on_host"]}
    table = ok(run(home, "host", "show", running["host"]))
    assert "somewhere" in table and running["id"] in table
    missing = run(home, "host", "show", "no-such-host")
    assert missing.returncode == 1 and "no host no-such-host" in missing.stderr
