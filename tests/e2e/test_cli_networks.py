"""`labcloud network ...` (the installed command, as tests/e2e/test_cli.py runs it) against a running
system: an admin creates a subnet, reserves and releases an address, prints the MAC list guests of
the subnet can get, deletes it; a user is refused in one line with exit status 1."""
import json
import random
import tempfile
import uuid

import pytest

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user
from tests.e2e.test_cli import ok, run

pytestmark = pytest.mark.e2e


def test_a_subnet_from_the_command_line_and_refused_to_a_user(stack):
    home = tempfile.mkdtemp(prefix="labcloud-cli-networks-")
    ok(run(home, "login", "--url", stack.url, "--username", "admin", "--password-stdin",
           stdin=ADMIN_PASSWORD + "\n"))
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    base = f"10.{random.randrange(200, 250)}.{random.randrange(256)}"  # this file's: 10.200-249.x.0/24
    name = f"cli-{uuid.uuid4().hex[:6]}"

    made = json.loads(ok(run(home, "network", "create", name, f"{base}.0/24", "--range", f"{base}.20-{base}.30",
                             "--dns", "1.1.1.1", "--dns", "9.9.9.9", "--reserve", f"{base}.21", "--json")))
    assert made == admin.call("GET", f"/subnets/{made['id']}", 200).json()  # the API's answer
    assert (made["name"], made["cidr"], made["gateway"], made["mac_policy"], made["is_default"]) == (
        name, f"{base}.0/24", f"{base}.1", "orca", False)
    assert made["dns_servers"] == ["1.1.1.1", "9.9.9.9"] and made["reserved"] == [f"{base}.21"]
    assert (made["allocated"], made["free"]) == (0, 10)

    lines = ok(run(home, "network", "list")).splitlines()  # piped: plain columns
    assert lines[0].split() == ["ID", "NAME", "CIDR", "GATEWAY", "ALLOCATION_RANGE", "MACS", "MODE", "ALLOCATED",
                                "FREE", "DEFAULT"]
    row = next(line.split() for line in lines[1:] if name in line.split())
    assert row == [str(made["id"]), name, f"{base}.0/24", f"{base}.1", f"{base}.20-{base}.30", "orca", "bridged",
                   "0", "10", "-"]  # not the default: an empty cell is "-" (awk keeps its columns)

    said = ok(run(home, "network", "reserve", name, f"{base}.25", "--note", "printer")).strip()
    assert said == f"{name}: reserved {base}.21, {base}.25"
    said = ok(run(home, "network", "unreserve", name, f"{base}.21")).strip()
    assert said == f"{name}: reserved {base}.25"
    assert admin.call("GET", f"/subnets/{made['id']}", 200).json()["reserved"] == [f"{base}.25"]

    # The MAC list: a header, then every address guests can get (.20-.30 without .25) with Orca's MAC.
    lines = ok(run(home, "network", "macs", name)).splitlines()
    assert lines[0].split() == ["IP", "MAC"]
    rows = [tuple(line.split()) for line in lines[1:] if line.strip()]
    expected = [(e["ip"], e["mac"]) for e in admin.call("GET", f"/subnets/{made['id']}/macs", 200).json()]
    assert rows == expected and len(rows) == 10
    octets = [int(o) for o in base.split(".")]
    assert rows[0] == (f"{base}.20", "aa:00:" + ":".join(f"{o:02x}" for o in octets + [20]))
    assert f"{base}.25" not in {ip for ip, _mac in rows}

    user = approved_user(stack.url, admin, f"nw{uuid.uuid4().hex[:6]}")
    as_user = {"LABCLOUD_URL": stack.url, "LABCLOUD_TOKEN": user.token}
    for args in (("network", "list"), ("network", "create", f"no-{uuid.uuid4().hex[:6]}", f"{base}.0/24")):
        refused = run(home, *args, env=as_user)
        assert refused.returncode == 1 and refused.stdout == "", refused.stdout
        assert refused.stderr.startswith("error: ") and "administrator" in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1

    # Routed: bound to a host; a routed subnet without one is refused naming the field.
    routed_name, routed_base = f"{name}-r", f"10.{random.randrange(200, 250)}.{random.randrange(256)}"
    refused = run(home, "network", "create", routed_name, f"{routed_base}.0/28", "--mode", "routed")
    assert refused.returncode == 1 and refused.stderr.startswith("error: host: "), refused.stderr
    routed = json.loads(ok(run(home, "network", "create", routed_name, f"{routed_base}.0/28", "--mode", "routed",
                               "--host", "hx", "--json")))
    assert (routed["mode"], routed["host"]) == ("routed", "hx")
    row = next(line for line in ok(run(home, "network", "list")).splitlines() if routed_name in line.split())
    assert row.split()[6] == "routed:hx"
    assert ok(run(home, "network", "delete", routed_name)).strip() == f"{routed_name}: deleted"

    assert ok(run(home, "network", "delete", name)).strip() == f"{name}: deleted"
    assert admin.call("GET", f"/subnets/{made['id']}").status_code == 404
    missing = run(home, "network", "show", name)
    assert missing.returncode == 1 and f"no subnet named {name}" in missing.stderr, missing.stderr
