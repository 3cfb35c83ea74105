"""A volume lives on one host (on the two-host stack the migration modules share, libvirt's test
driver): attaching it to an instance on the other host is a 409 naming `instance` that says both
hosts, and an instance with a volume attached does not migrate (it stays running where it is, the
reason says why); detached, it moves."""
import uuid

import pytest

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user, tiny_image

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(two_host_stack):
    return two_host_stack


@pytest.fixture(scope="module")
def pair(stack):
    """(admin, user, [instance on one host, instance on the other])."""
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    user = approved_user(stack.url, admin, f"v2h{uuid.uuid4().hex[:6]}")
    flavor = min(user.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    image = tiny_image(user)
    made = []
    for name in ("here", "there"):
        iid = user.call("POST", "/instances", 202, json={"name": name, "flavor": flavor["id"], "image": image["id"],
                                                        "key": user.key}).json()["id"]
        made.append(user.wait_for(f"/instances/{iid}", lambda r: r.json()["state"] in ("running", "error"),
                                  timeout=60).json())
    assert all(i["state"] == "running" for i in made), made
    if made[0]["host"] == made[1]["host"]:  # the scheduler put both on one host: move the second
        other = next(h for h in stack.hosts if h != made[0]["host"])
        admin.call("POST", f"/instances/{made[1]['id']}/migrate", 202, json={"host": other})
        made[1] = user.wait_for(f"/instances/{made[1]['id']}", lambda r: r.json()["state"] != "migrating",
                                timeout=60).json()
    assert made[0]["host"] != made[1]["host"] and made[1]["state"] == "running", made
    yield admin, user, made
    for instance in made:
        user.call("DELETE", f"/instances/{instance['id']}")


def test_a_volume_attaches_only_on_its_own_host_and_pins_its_instance(pair):
    admin, user, (here, there) = pair
    volume = user.call("POST", "/volumes", 201, json={"name": "pinned", "size_gib": 1, "instance": here["id"]}).json()
    assert volume["host"] == here["host"]
    refused = user.call("POST", f"/volumes/{volume['id']}/attach", 409, json={"instance": there["id"]}).json()["error"]
    assert refused["fields"] == {"instance": [f"on host {there['host']}, the volume on {here['host']}"]}
    assert here["host"] in refused["message"] and there["host"] in refused["message"]
    assert user.call("GET", f"/volumes/{volume['id']}", 200).json()["state"] == "available"

    user.call("POST", f"/volumes/{volume['id']}/attach", 200, json={"instance": here["id"]})
    admin.call("POST", f"/instances/{here['id']}/migrate", 202, json={"host": there["host"]})
    after = user.wait_for(f"/instances/{here['id']}", lambda r: r.json()["state"] != "migrating", timeout=60).json()
    assert (after["state"], after["host"]) == ("running", here["host"]), after
    assert "data volumes attached (vdb)" in after["reason"], after
    assert after["volumes"][0]["device"] == "vdb"

    user.call("POST", f"/volumes/{volume['id']}/detach", 200)
    admin.call("POST", f"/instances/{here['id']}/migrate", 202, json={"host": there["host"]})
    moved = user.wait_for(f"/instances/{here['id']}", lambda r: r.json()["state"] != "migrating", timeout=60).json()
    assert (moved["state"], moved["host"]) == ("running", there["host"]), moved
    user.call("DELETE", f"/volumes/{volume['id']}", 200)
