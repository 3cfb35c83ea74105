"""`labcloud host list` (the installed command, as tests/e2e/test_cli.py runs it) against a running
system: an admin sees the stack's hosts, as a table and as the API's JSON; a user is refused in
one line with exit status 1."""
import json
import tempfile
import uuid

import pytest

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user
from tests.e2e.test_cli import ok, run

pytestmark = pytest.mark.e2e


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
    assert lines[0].split() == ["NAME", "STATE", "HYPERVISOR", "VCPUS", "MEMORY_MIB", "LAST_HEARTBEAT"]
    row = next(line.split() for line in lines[1:] if line.split()[0] == stack.hosts[0])
    host = next(h for h in hosts if h["name"] == stack.hosts[0])
    assert row[1] == host["state"] and row[3] == f"{host['used_vcpus']}/{host['vcpus']}"
    assert row[4] == f"{host['used_memory_mib']}/{host['memory_mib']}"

    user = approved_user(stack.url, admin, f"hl{uuid.uuid4().hex[:6]}")
    refused = run(home, "host", "list", env={"LABCLOUD_URL": stack.url, "LABCLOUD_TOKEN": user.token})
    assert refused.returncode == 1 and refused.stdout == "", refused.stdout
    assert refused.stderr.startswith("error: ") and "administrator" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
