"""Real guests (QEMU) and the state machine: a stopped guest and a rebooting guest are deleted with
nothing left on their host; six creates of one image arrive at once on a host that has no copy of
it yet, and all six run."""
import threading
import uuid

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from common import netns
from labcloud.image_register import registration_request
from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user


@pytest.fixture(scope="module")
def admin(qemu_stack):
    return Api(qemu_stack.url).login("admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def user(qemu_stack, admin):
    api = approved_user(qemu_stack.url, admin, "life")
    api.flavor = min(api.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])["id"]
    return api


def create(api, name, image):
    return api.call("POST", "/instances", 202, json={"name": name, "flavor": api.flavor, "image": image,
                                                     "key": api.key}).json()


def wait_state(api, instance_id, states, timeout=240):
    return api.wait_for(f"/instances/{instance_id}", lambda r: r.json()["state"] in states,
                        timeout=timeout, interval=0.25).json()


def leftovers(stack, instances, host="host1"):
    """What the host still holds for these instances: domains, disks, DHCP entries, forwards,
    console logs (from the agent's inventory), static neighbour entries (from the namespace), and
    addresses still allocated."""
    ids = {i["id"] for i in instances}
    ips = {i["ip"] for i in instances if i.get("ip")}
    with ClusterRpcProxy({"AMQP_URI": stack.amqp_uri}, timeout=30) as rpc:
        inventory = rpc[f"hostagent_{host}"].get_inventory()
        addresses = [rpc.network.get_address(i) for i in ids]
    held = [("domain", d["instance_id"]) for d in inventory["domains"] if d["instance_id"] in ids]
    held += [("volume", v["name"]) for v in inventory["volumes"] if any(i in v["name"] for i in ids)]
    held += [("dhcp", e["ip"]) for e in inventory["dhcp_entries"] if e["instance_id"] in ids or e["ip"] in ips]
    held += [("forward", f["port"]) for f in inventory["forwards"] if f["instance_id"] in ids]
    held += [("console", c) for c in inventory["console_logs"] if c in ids]
    # The static entries the agent pins (`nud permanent`). Not the kernel's own cache: a packet
    # still in flight to a deleted guest's address (a readiness probe's connect that was under
    # way when it was cancelled) makes an INCOMPLETE entry, which the kernel drops by itself.
    neighbours = netns.run(stack.qemu_hosts[host].netns, ["ip", "neigh", "show", "nud", "permanent"]).stdout
    held += [("neighbour", line) for line in neighbours.splitlines() if line.split()[:1] and line.split()[0] in ips]
    held += [("address", a["ip"]) for a in addresses if a is not None]
    return held


def test_deleting_a_stopped_and_a_rebooting_real_guest_leaves_nothing(qemu_stack, user):
    tiny = next(i for i in user.call("GET", "/images", 200).json() if i["name"] == "tiny")["id"]
    stopped, rebooting = create(user, "del-stopped", tiny), create(user, "del-rebooting", tiny)
    stopped = wait_state(user, stopped["id"], ("running", "error"))
    rebooting = wait_state(user, rebooting["id"], ("running", "error"))
    assert stopped["state"] == rebooting["state"] == "running", (stopped, rebooting)
    assert stopped["ssh"] and rebooting["ssh"]

    assert user.call("POST", f"/instances/{stopped['id']}/stop", 202).json()["state"] == "stopping"
    assert wait_state(user, stopped["id"], ("stopped", "error"), timeout=60)["state"] == "stopped"
    user.call("DELETE", f"/instances/{stopped['id']}", 202)
    user.wait_for(f"/instances/{stopped['id']}", lambda r: r.status_code == 404, timeout=30)

    # The reboot is under way (an ACPI reboot of a booting guest takes seconds) when the delete comes.
    assert user.call("POST", f"/instances/{rebooting['id']}/reboot", 202).json()["state"] == "rebooting"
    assert user.call("DELETE", f"/instances/{rebooting['id']}", 202).json()["state"] == "deleting"
    user.wait_for(f"/instances/{rebooting['id']}", lambda r: r.status_code == 404, timeout=60)
    assert leftovers(qemu_stack, [stopped, rebooting]) == []
    log = [(a["action"], a["result"]) for a in user.call("GET", f"/instances/{rebooting['id']}/actions", 200).json()]
    assert log[0] == ("create", "success") and ("delete", "success") in log and log[1][0] == "reboot", log


def test_six_creates_of_an_image_new_to_the_host_all_run(qemu_stack, user, admin):
    """No copy of this image is on the host yet: six creates race to put it there."""
    request = registration_request("tiny", qemu_stack.data_dir)
    image = admin.call("POST", "/images", 201, json=dict(request, name=f"tiny-{uuid.uuid4().hex[:6]}")).json()
    results, threads = {}, []
    for n in range(6):
        def go(n=n):
            results[n] = create(user, f"race-{n}", image["id"])
        threads.append(threading.Thread(target=go))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    finished = [wait_state(user, results[n]["id"], ("running", "error")) for n in range(6)]
    assert [i["state"] for i in finished] == ["running"] * 6, [(i["state"], i["reason"]) for i in finished]
    with ClusterRpcProxy({"AMQP_URI": qemu_stack.amqp_uri}, timeout=30) as rpc:
        copies = [v for v in rpc.hostagent_host1.get_inventory()["volumes"] if v["name"] == f"image-{image['id']}.qcow2"]
    assert len(copies) == 1
    for inst in finished:
        user.call("DELETE", f"/instances/{inst['id']}", 202)
    for inst in finished:
        user.wait_for(f"/instances/{inst['id']}", lambda r: r.status_code == 404, timeout=60)
    assert leftovers(qemu_stack, finished) == []
