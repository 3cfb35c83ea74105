"""A course's subnet block end to end (REST and the installed CLI): its manager reserves a /28 of
the default subnet, the course's new instance gets its address from the block, another course's
does not, a student may not reserve one, and the block goes back when ended and free."""
import ipaddress
import json
import tempfile

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user, tiny_image
from tests.e2e.portal import unique
from tests.e2e.test_cli import ok, run


def running(api, name):
    flavor = min(api.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    image = tiny_image(api)
    made = api.call("POST", "/instances", 202, json={"name": name, "flavor": flavor["id"], "image": image["id"],
                                                    "key": api.key}).json()
    return api.wait_for(f"/instances/{made['id']}", lambda r: r.json()["state"] in ("running", "error"),
                        timeout=60).json()


def test_a_course_block_from_reservation_to_its_end(stack):
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    student = approved_user(stack.url, admin, unique("blk"))
    course = student.project
    teacher = approved_user(stack.url, admin, unique("tch"), project=course)
    admin.call("POST", f"/projects/{course}/members", 201, json={"user": teacher.user_id, "role": "manager"})
    username, password = teacher.username, teacher.password
    teacher = Api(stack.url).login(username, password)   # a token that knows the new role
    outsider = approved_user(stack.url, admin, unique("out"))

    assert student.call("POST", f"/projects/{course}/subnet-blocks", json={"prefixlen": 28}).status_code == 403
    refused = teacher.call("POST", f"/projects/{course}/subnet-blocks", 400, json={"prefixlen": 21}).json()
    assert "prefixlen" in refused["error"]["fields"]
    assert outsider.call("GET", f"/projects/{course}/subnet-blocks").status_code in (403, 404)

    home = tempfile.mkdtemp(prefix="labcloud-cli-blocks-")
    ok(run(home, "login", "--url", stack.url, "--username", username, "--password-stdin", stdin=password + "\n"))
    block = json.loads(ok(run(home, "network", "block-reserve", str(course), "--prefix", "28", "--json")))
    net = ipaddress.IPv4Network(block["cidr"])
    assert (net.prefixlen, block["size"], block["allocated"]) == (28, 16, 0)
    assert student.call("GET", f"/projects/{course}/subnet-blocks", 200).json() == [block]

    inside = running(student, "in-block")
    elsewhere = running(outsider, "not-in-block")
    assert inside["state"] == elsewhere["state"] == "running"
    assert ipaddress.IPv4Address(inside["ip"]) in net, (inside["ip"], block)
    assert ipaddress.IPv4Address(elsewhere["ip"]) not in net
    listed = ok(run(home, "network", "blocks", str(course))).splitlines()
    assert listed[0].split()[:5] == ["ID", "CIDR", "SUBNET", "ALLOCATED", "FREE"]
    assert listed[1].split()[:5] == [str(block["id"]), block["cidr"], "default", "1", "15"]

    # Ended while its guest runs: it waits for the address; the guest's delete frees it.
    assert ok(run(home, "network", "block-end", str(block["id"]))).strip() == (
        f"{block['cidr']}: ended, back when its 1 addresses are free")
    for api, inst in ((student, inside), (outsider, elsewhere)):
        api.call("DELETE", f"/instances/{inst['id']}", 202)
        api.wait_for(f"/instances/{inst['id']}", lambda r: r.status_code == 404, timeout=60)
    gone = teacher.call("DELETE", f"/subnet-blocks/{block['id']}", 200).json()
    assert gone["allocated"] == 0
    assert teacher.call("GET", f"/projects/{course}/subnet-blocks", 200).json() == []
