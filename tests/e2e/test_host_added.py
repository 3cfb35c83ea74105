"""A host added to a running system: a new host agent process registers itself with its first
heartbeat and takes instances, without a restart of anything else (a new `hostagent` process on a
new machine, or `LABCLOUD_HOSTS=2` after a restart, come up the same way)."""
import uuid

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user, tiny_image
from tests.e2e.extra_host import added_host


def test_a_new_host_agent_is_used_without_touching_the_others(stack):
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    name = f"added-{uuid.uuid4().hex[:6]}"
    user = approved_user(stack.url, admin, f"ha{uuid.uuid4().hex[:6]}")
    flavor = min(user.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    image = tiny_image(user)
    with added_host(stack, admin, name):
        added = admin.call("GET", "/hosts", 200).json()
        assert next(h for h in added if h["name"] == name)["status"] == "enabled"
        # The stack's own hosts out of placement: the new one takes the instance.
        for host in stack.hosts:
            admin.call("POST", f"/hosts/{host}/disable", 200)
        try:
            made = user.call("POST", "/instances", 202, json={"name": "on-new-host", "flavor": flavor["id"],
                                                             "image": image["id"], "key": user.key}).json()
            running = user.wait_for(f"/instances/{made['id']}", lambda r: r.json()["state"] in ("running", "error"),
                                    timeout=60).json()
        finally:
            for host in stack.hosts:
                admin.call("POST", f"/hosts/{host}/enable", 200)
        assert running["state"] == "running" and running["host"] == name, running
        shown = admin.call("GET", f"/hosts/{name}", 200).json()
        assert [i["id"] for i in shown["instances_on_host"]] == [made["id"]]
        user.call("DELETE", f"/instances/{made['id']}", 202)
        user.wait_for(f"/instances/{made['id']}", lambda r: r.status_code == 404, timeout=60)
