"""Data volumes through the REST API and the CLI on the whole system (libvirt's test driver: an
attach there changes the domain's definition, no guest sees it; the real-guest test proves the
hot-plug): create, attach to a running instance (the instance shows it), refusals, detach, a move to
another instance, snapshots and a volume from one, the instance's delete releasing its volume,
quotas, and `labcloud volume ...`."""
import json
import tempfile
import uuid

import pytest

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user, running_instances
from tests.e2e.test_cli import ok, run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def admin(stack):
    return Api(stack.url).login("admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def student(stack, admin):
    return approved_user(stack.url, admin, f"vol{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
def vms(student):
    return running_instances(student, 2, prefix="volvm")


def test_a_volume_attaches_detaches_and_moves_to_another_instance(student, vms):
    first, second = vms
    volume = student.call("POST", "/volumes", 201, json={"name": "data", "size_gib": 2}).json()
    assert (volume["state"], volume["size_gib"], volume["project"], volume["device"]) == (
        "available", 2, student.project, None)
    # The same request again answers the same volume (at-least-once clients may repeat it).
    assert student.call("POST", "/volumes", 201, json={"name": "data", "size_gib": 2}).json()["id"] == volume["id"]

    attached = student.call("POST", f"/volumes/{volume['id']}/attach", 200, json={"instance": first}).json()
    assert (attached["state"], attached["attach_state"], attached["instance"], attached["device"]) == (
        "in-use", "attached", first, "vdb")
    shown = student.call("GET", f"/instances/{first}", 200).json()
    assert shown["volumes"] == [{"id": volume["id"], "name": "data", "size_gib": 2, "device": "vdb",
                                 "attach_state": "attached"}]
    assert student.call("GET", f"/instances/{second}", 200).json()["volumes"] == []
    assert [v["id"] for v in student.call("GET", "/volumes", 200, params={"instance": first}).json()] == [volume["id"]]

    busy = student.call("POST", f"/volumes/{volume['id']}/attach", 409, json={"instance": second}).json()
    assert busy["error"]["fields"] == {"state": ["in-use"]}
    in_use = student.call("DELETE", f"/volumes/{volume['id']}", 409).json()
    assert in_use["error"]["fields"] == {"state": ["in-use"]}

    detached = student.call("POST", f"/volumes/{volume['id']}/detach", 200).json()
    assert (detached["state"], detached["instance"], detached["device"]) == ("available", None, None)
    assert student.call("GET", f"/instances/{first}", 200).json()["volumes"] == []
    moved = student.call("POST", f"/volumes/{volume['id']}/attach", 200, json={"instance": second}).json()
    assert (moved["instance"], moved["device"]) == (second, "vdb")

    snapshot = student.call("POST", f"/volumes/{volume['id']}/snapshots", 201, json={"name": "s1"}).json()
    assert (snapshot["state"], snapshot["volume"], snapshot["size_gib"]) == ("available", volume["id"], 2)
    assert student.call("GET", f"/volumes/{volume['id']}/snapshots", 200).json() == [snapshot]
    copy = student.call("POST", "/volumes", 201, json={"name": "copy", "snapshot": snapshot["id"]}).json()
    assert (copy["state"], copy["snapshot"], copy["size_gib"], copy["host"]) == (
        "available", snapshot["id"], 2, volume["host"])

    # Deleting the instance detaches its volume: available again, its data kept.
    student.call("DELETE", f"/instances/{second}", 202)
    student.wait_for(f"/volumes/{volume['id']}", lambda r: r.json()["state"] == "available", timeout=60)
    student.call("DELETE", f"/volumes/{volume['id']}", 200)
    student.call("GET", f"/volumes/{volume['id']}", 404)
    student.call("DELETE", f"/snapshots/{snapshot['id']}", 200)
    student.call("DELETE", f"/volumes/{copy['id']}", 200)


@pytest.mark.parametrize("body,field", [
    ({"name": "x"}, "size_gib"), ({"name": "x", "size_gib": 0}, "size_gib"), ({"name": "x", "size_gib": 4096}, "size_gib"),
    ({"name": "", "size_gib": 1}, "name"), ({"size_gib": 1}, "name"), ({"name": "x", "size_gib": "1"}, "size_gib"),
    ({"name": "x", "size_gib": 1, "colour": "red"}, "colour"), ({"name": "x", "snapshot": 1, "image": 1}, "image"),
    ({"name": "x", "size_gib": 1, "instance": "nope"}, "instance"),
])
def test_bad_input_is_400_naming_the_field(student, body, field):
    refused = student.call("POST", "/volumes", 400, json=body).json()["error"]
    assert field in refused["fields"]


def test_refusals_name_the_field_and_change_nothing(stack, admin, student, vms):
    volume = student.call("POST", "/volumes", 201, json={"name": "refused", "size_gib": 1}).json()
    assert "instance" in student.call("POST", f"/volumes/{volume['id']}/attach", 400,
                                      json={"instance": "x"}).json()["error"]["fields"]
    assert "instance" in student.call("POST", f"/volumes/{volume['id']}/attach", 404,
                                      json={"instance": str(uuid.uuid4())}).json()["error"]["fields"]
    # Someone else's instance looks missing; someone else's volume too.
    other = approved_user(stack.url, admin, f"vo{uuid.uuid4().hex[:6]}")
    theirs = other.call("POST", "/volumes", 201, json={"name": "theirs", "size_gib": 1}).json()
    student.call("GET", f"/volumes/{theirs['id']}", 404)
    student.call("POST", f"/volumes/{theirs['id']}/attach", 404, json={"instance": vms[0]})
    other.call("POST", f"/volumes/{theirs['id']}/attach", 404, json={"instance": vms[0]})
    assert student.call("GET", f"/volumes/{volume['id']}", 200).json()["state"] == "available"
    # The project's volume count and GiB are limited.
    admin.call("PUT", f"/projects/{other.project}/quota", 200, json={"volumes": 1, "volume_gib": 5})
    over = other.call("POST", "/volumes", 403, json={"name": "two", "size_gib": 1}).json()["error"]
    assert set(over["fields"]) == {"volumes"}
    admin.call("PUT", f"/projects/{other.project}/quota", 200, json={"volumes": 5})
    over = other.call("POST", "/volumes", 403, json={"name": "big", "size_gib": 5}).json()["error"]
    assert over["fields"] == {"volume_gib": ["project limit 5, in use 1, requested 5"]}
    usage = other.call("GET", f"/projects/{other.project}/usage", 200).json()
    assert usage["resources"]["volumes"] == {"limit": 5, "in_use": 1}
    assert usage["mine"]["volume_gib"] == {"limit": None, "in_use": 1}


def test_the_command_line(stack, student, vms):
    home = tempfile.mkdtemp(prefix="labcloud-cli-volumes-")
    as_student = {"LABCLOUD_URL": stack.url, "LABCLOUD_TOKEN": student.token}
    first = student.call("GET", f"/instances/{vms[0]}", 200).json()["name"]
    made = json.loads(ok(run(home, "volume", "create", "clivol", "--size", "1", "--json", env=as_student)))
    assert made == student.call("GET", f"/volumes/{made['id']}", 200).json()
    said = ok(run(home, "volume", "attach", "clivol", first, env=as_student)).strip()
    assert said.startswith(f"clivol: attached to {first} as /dev/vd")
    lines = ok(run(home, "volume", "list", env=as_student)).splitlines()
    assert lines[0].split() == ["ID", "NAME", "GIB", "STATE", "HOST", "INSTANCE", "DEVICE", "PROJECT"]
    row = next(line.split() for line in lines[1:] if "clivol" in line.split())
    assert row[2:4] == ["1", "in-use"] and row[5] == vms[0]
    assert json.loads(ok(run(home, "volume", "show", "clivol", "--json", env=as_student)))["instance"] == vms[0]
    refused = run(home, "volume", "delete", "clivol", env=as_student)
    assert refused.returncode == 1 and "detach" in refused.stderr
    assert ok(run(home, "volume", "detach", "clivol", env=as_student)).strip() == "clivol: available"
    snapshot = json.loads(ok(run(home, "volume", "snapshot", "clivol", "clisnap", "--json", env=as_student)))
    assert snapshot["state"] == "available"
    assert "clisnap" in ok(run(home, "volume", "snapshots", "clivol", env=as_student))
    assert ok(run(home, "volume", "snapshot-delete", "clisnap", env=as_student)).strip() == "clisnap: deleted"
    assert ok(run(home, "volume", "delete", "clivol", env=as_student)).strip() == "clivol: deleted"
    student.call("GET", f"/volumes/{made['id']}", 404)
