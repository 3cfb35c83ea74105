"""Data volumes on real QEMU guests, through the REST API: a volume hot-plugged into a running
guest appears in it (/sys/block/vdb, and in the domain's live definition), keeps the bytes written
to it across a detach (the device leaves the guest) and a re-attach to a second guest, a volume made
from its snapshot holds them too (and a write to that copy leaves the original alone), and a volume
attached to a stopped guest is there when it starts. The bytes are written to the raw device with
dd and read back by the other guest: the disk's contents, not a record, prove the move."""
import time
import uuid
import xml.etree.ElementTree as ET

import libvirt
import pytest

from tests.realguest.guests import students_guests
from tests.realguest.test_real_guest import run, ssh, wait_ready

SEEN_WITHIN_S = 30  # TCG on a loaded 2-core machine; hot-plug itself takes ~0.01 s (HYPERVISOR.md)


@pytest.fixture(scope="module")
def guests(qemu_stack):
    """Two running guests of one student (on the stack's one host): (api, key, [a, b])."""
    with students_guests(qemu_stack.url, "volumes", ("vol-a", "vol-b"), wait_ready) as made:
        yield made


@pytest.fixture(scope="module")
def conn(qemu_stack, guests):
    [host] = {i["host"] for i in guests[2]}
    connection = qemu_stack.qemu_hosts[host].open()
    yield connection
    connection.close()


def live_disks(conn, instance_id):
    xml = conn.lookupByUUIDString(instance_id).XMLDesc(0)
    return {d.find("target").get("dev") for d in ET.fromstring(xml).findall("devices/disk")}


def block_devices(client):
    return set(run(client, "ls /sys/block").split())


def wait_for(predicate, timeout=SEEN_WITHIN_S):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def write_marker(client, device, marker):
    """`marker` at the start of the raw device, flushed to the disk (conv=fsync)."""
    return run(client, f"printf '%s' '{marker}' > /tmp/marker && dd if=/tmp/marker of=/dev/{device} bs=512 "
                       "count=1 conv=sync,fsync 2>/dev/null && echo written")


def read_marker(client, device, length):
    return run(client, f"dd if=/dev/{device} bs=512 count=1 2>/dev/null | head -c {length}")


def test_hot_plug_keeps_the_data_across_detach_and_a_move_to_another_guest(guests, conn):
    api, key, [a, b] = guests
    volume = api.call("POST", "/volumes", 201, json={"name": "lab-data", "size_gib": 1, "instance": a["id"]}).json()
    assert volume["host"] == a["host"] and volume["state"] == "available"
    marker = f"labcloud-volume-{uuid.uuid4().hex}"
    with ssh(a, key) as in_a:
        assert "vdb" not in block_devices(in_a)
        attached = api.call("POST", f"/volumes/{volume['id']}/attach", 200, json={"instance": a["id"]}).json()
        assert (attached["state"], attached["attach_state"], attached["device"]) == ("in-use", "attached", "vdb")
        assert "vdb" in live_disks(conn, a["id"])  # hot-plugged: the running domain has it
        assert wait_for(lambda: "vdb" in block_devices(in_a)), block_devices(in_a)
        size_sectors = int(run(in_a, "cat /sys/block/vdb/size"))
        assert size_sectors * 512 == 1 << 30
        assert write_marker(in_a, "vdb", marker) == "written"
        assert read_marker(in_a, "vdb", len(marker)) == marker

        detached = api.call("POST", f"/volumes/{volume['id']}/detach", 200).json()
        assert (detached["state"], detached["device"]) == ("available", None)
        assert "vdb" not in live_disks(conn, a["id"])
        assert wait_for(lambda: "vdb" not in block_devices(in_a)), block_devices(in_a)

    with ssh(b, key) as in_b:
        moved = api.call("POST", f"/volumes/{volume['id']}/attach", 200, json={"instance": b["id"]}).json()
        assert (moved["instance"], moved["device"]) == (b["id"], "vdb")
        assert wait_for(lambda: "vdb" in block_devices(in_b)), block_devices(in_b)
        assert read_marker(in_b, "vdb", len(marker)) == marker
        assert api.call("GET", f"/instances/{b['id']}", 200).json()["volumes"][0]["device"] == "vdb"
        api.call("POST", f"/volumes/{volume['id']}/detach", 200)
        assert wait_for(lambda: "vdb" not in block_devices(in_b)), block_devices(in_b)

        # A snapshot is a full copy in the host's pool (qemu-img through libvirt's createXMLFrom): a
        # volume made from it holds the same bytes, the source's later writes do not reach it.
        snapshot = api.call("POST", f"/volumes/{volume['id']}/snapshots", 201, json={"name": "monday"}).json()
        copy = api.call("POST", "/volumes", 201, json={"name": "from-monday", "snapshot": snapshot["id"]}).json()
        assert (copy["host"], copy["size_gib"]) == (volume["host"], 1)
        api.call("POST", f"/volumes/{copy['id']}/attach", 200, json={"instance": b["id"]})
        assert wait_for(lambda: "vdb" in block_devices(in_b)), block_devices(in_b)
        assert read_marker(in_b, "vdb", len(marker)) == marker
        assert write_marker(in_b, "vdb", "overwritten-on-the-copy") == "written"
        api.call("POST", f"/volumes/{copy['id']}/detach", 200)
        assert wait_for(lambda: "vdb" not in block_devices(in_b)), block_devices(in_b)
        api.call("DELETE", f"/volumes/{copy['id']}", 200)
        api.call("DELETE", f"/snapshots/{snapshot['id']}", 200)

    # Attached to a stopped guest (its definition only), it is there when the guest starts.
    api.call("POST", f"/instances/{a['id']}/stop", 202)
    api.wait_for(f"/instances/{a['id']}", lambda r: r.json()["state"] == "stopped", timeout=60)
    cold = api.call("POST", f"/volumes/{volume['id']}/attach", 200, json={"instance": a["id"]}).json()
    assert cold["attach_state"] == "attached"
    domain = conn.lookupByUUIDString(a["id"])
    assert not domain.isActive()
    assert "vdb" in {d.find("target").get("dev") for d in ET.fromstring(
        domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).findall("devices/disk")}
    api.call("POST", f"/instances/{a['id']}/start", 202)
    started = wait_ready(api, a["id"])
    with ssh(started, key) as in_a:
        assert "vdb" in block_devices(in_a)
        assert read_marker(in_a, "vdb", len(marker)) == marker
    api.call("POST", f"/volumes/{volume['id']}/detach", 200)
    api.call("DELETE", f"/volumes/{volume['id']}", 200)
