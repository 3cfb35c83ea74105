"""Live migration of a real QEMU guest between two linked local hosts (labcloud/host_link.py: one
L2 segment for the guests, a migration network for QEMU's stream), through the REST API:
- a migration that fails (the destination already has a domain of the guest's name, so libvirt
  refuses it) leaves the guest running on the source, its SSH session alive, and nothing of it on
  the destination;
- a migration that succeeds keeps an SSH session opened before it working, moves the SSH endpoint
  (a new session through the new port), and the guest's CPU weight and bandwidth limits are set on
  the destination; nothing of it is left on the source;
- draining the host it is on then moves it back and disables that host;
- stopped, it migrates cold, and what it wrote on its disk is there when it starts on the other host.
The stack has two hosts of its own (the package's shared QEMU stack has one)."""
import logging
import os
import socket
import tempfile
import time

import libvirt
import paramiko
import pytest

from hostagent import bandwidth, dhcp, shares
from labcloud.rabbit import free_port
from labcloud.stack import Stack
from tests.e2e.api import ADMIN_PASSWORD
from tests.realguest.guests import student_with_key, tiny_guests
from tests.realguest.conftest import IMAGE_CACHE
from tests.realguest.test_real_guest import run, ssh, wait_ready

# A session that breaks says why in the failure's captured log (paramiko logs an EOF, the server's
# disconnect reason or a message for an unknown channel, at DEBUG to ERROR).
logging.getLogger("paramiko.transport").setLevel(logging.DEBUG)


@pytest.fixture(scope="module")
def linked_stack(rabbit_node, vhosts, image_builds):
    data_dir = tempfile.mkdtemp(prefix="labcloud-migrate-")
    image_builds.copy_to(data_dir)
    with Stack(data_dir, port=free_port(), amqp_uri=rabbit_node.amqp_uri_for(vhosts.take()), hosts=2,
               hypervisor="qemu", admin_password=ADMIN_PASSWORD, image_cache_dir=IMAGE_CACHE,
               extra_env={"STATS_INTERVAL": "2", "HEARTBEAT_INTERVAL": "1", "METRICS_STEP": "2"},
               quiet=True) as running:
        yield running


@pytest.fixture(scope="module")
def traveller(linked_stack):
    """(admin, user api, key, the running guest) with shares of its own."""
    admin, api, key, key_id = student_with_key(linked_stack.url, "mover")
    [guest] = tiny_guests(api, key_id, ["mover"], wait_ready)
    guest = api.call("PATCH", f"/instances/{guest['id']}", 200,
                     json={"cpu_weight": 512, "bandwidth_in_kib": 2048, "bandwidth_out_kib": 1024}).json()
    yield admin, api, key, guest
    api.call("DELETE", f"/instances/{guest['id']}")
    api.wait_for(f"/instances/{guest['id']}", lambda r: r.status_code == 404, timeout=120)


def other_host(stack, name):
    return next(h for h in stack.hosts if h != name)


def nothing_of(stack, host_name, guest):
    """What the host still holds of the instance: domains, root disk, DHCP entry, console log, ifb."""
    instance_id = guest["id"]
    host = stack.qemu_hosts[host_name]
    conn = host.open()
    try:
        domains = [d.name() for d in conn.listAllDomains() if d.UUIDString() == instance_id]
        network = conn.networkLookupByName(host.network_name).XMLDesc(0)
    finally:
        conn.close()
    left = {"domains": domains,
            "disk": os.path.exists(os.path.join(stack.data_dir, "pools", host_name, f"root-{instance_id}.qcow2")),
            "dhcp": dhcp.entry_name(instance_id) in network or guest["mac"] in network,
            "console": os.path.exists(os.path.join(stack.data_dir, "consoles", host_name, f"{instance_id}.log")),
            "ifb": bandwidth.ifb_name(instance_id) in bandwidth.list_ifbs(host.netns)}
    return {k: v for k, v in left.items() if v}


def agent_log(stack, host, lines=60):
    with open(os.path.join(stack.data_dir, "logs", f"hostagent-{host}.log"), errors="replace") as log:
        return "".join(log.readlines()[-lines:])


def server_log(instance, key):
    """The guest's dropbear log, through a new session (to explain a session that broke)."""
    try:
        with ssh(instance, key) as client:
            return run(client, "tail -n 40 /var/log/dropbear.log")
    except Exception as exc:  # noqa: BLE001  (the explanation must not hide the failure)
        return f"(unreadable: {exc!r})"


def wait_settled(api, instance_id, timeout=120):
    return api.wait_for(f"/instances/{instance_id}", lambda r: r.json()["state"] != "migrating",
                        timeout=timeout, interval=0.2).json()


def test_a_failed_migration_leaves_the_guest_where_it_was(linked_stack, traveller):
    admin, api, key, guest = traveller
    source, destination = guest["host"], other_host(linked_stack, guest["host"])
    # A domain of the guest's name (not labcloud's, another UUID) on the destination: libvirt refuses.
    conn = linked_stack.qemu_hosts[destination].open()
    squatter = conn.defineXML(
        f"<domain type='qemu'><name>lc-{guest['id']}</name><memory unit='MiB'>32</memory>"
        "<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>")
    try:
        with ssh(guest, key) as session:
            assert run(session, "echo before") == "before"
            admin.call("POST", f"/instances/{guest['id']}/migrate", 202, json={"host": destination})
            after = wait_settled(api, guest["id"])
            assert after["state"] == "running" and after["host"] == source, after
            assert "failed" in after["reason"] and f"stays on {source}" in after["reason"], after
            assert run(session, "echo still") == "still"
        assert nothing_of(linked_stack, destination, guest) == {}
        [action] = [a for a in api.call("GET", f"/instances/{guest['id']}/actions", 200).json()
                    if a["action"] == "migrate"]
        assert action["result"] == "error", action
    finally:
        squatter.undefine()
        conn.close()


def test_live_migration_keeps_the_ssh_session_and_the_shares(linked_stack, traveller):
    admin, api, key, guest = traveller
    source, destination = guest["host"], other_host(linked_stack, guest["host"])
    with ssh(guest, key) as session:
        run(session, "echo kept > /tmp/state; setsid sh -c 'while :; do sleep 1; done' </dev/null >/dev/null 2>&1 &")
        started = time.monotonic()
        admin.call("POST", f"/instances/{guest['id']}/migrate", 202, json={})
        moved = wait_settled(api, guest["id"])
        print(f"\nmigration seen done by the API after {time.monotonic() - started:.1f} s")
        assert moved["state"] == "running" and moved["host"] == destination and not moved["reason"], moved
        assert (moved["ip"], moved["mac"]) == (guest["ip"], guest["mac"])
        # The session opened through the old endpoint still works: same guest, same processes.
        try:
            assert run(session, "cat /tmp/state") == "kept"
            assert run(session, "echo $((6*7))") == "42"
        except paramiko.SSHException as exc:
            raise AssertionError(f"the session opened before the migration broke ({exc!r}); the guest's "
                                 f"SSH server log:\n{server_log(moved, key)}\nthe source agent's log:\n"
                                 f"{agent_log(linked_stack, source)}") from exc
    with pytest.raises(ConnectionRefusedError):   # the old endpoint takes no new session
        socket.create_connection(("127.0.0.1", guest["ssh"]["port"]), timeout=5).close()
    with ssh(moved, key) as fresh:   # the endpoint moved with it
        assert run(fresh, "cat /tmp/state") == "kept"
    # The shares, on the destination: CPU weight live, bandwidth on the new tap.
    host = linked_stack.qemu_hosts[destination]
    conn = host.open()
    try:
        read = shares.read(conn, guest["id"], True)
        tap = shares.tap_device(conn.lookupByUUIDString(guest["id"]))
        assert conn.lookupByUUIDString(guest["id"]).state()[0] == libvirt.VIR_DOMAIN_RUNNING
    finally:
        conn.close()
    assert (read["cpu_weight"], read["bandwidth_in_kib"], read["bandwidth_out_kib"]) == (512, 2048, 1024), read
    assert bandwidth.read(host.netns, tap, guest["id"]) == (2048, 1024)
    assert nothing_of(linked_stack, source, guest) == {}
    assert admin.call("GET", f"/hosts/{source}", 200).json()["instances"] == 0


def test_draining_a_host_moves_its_guest_and_disables_it(linked_stack, traveller):
    admin, api, key, guest = traveller
    here = api.call("GET", f"/instances/{guest['id']}", 200).json()["host"]
    try:
        drained = admin.call("POST", f"/hosts/{here}/drain", 202).json()
        assert drained["migrations_started"] == [guest["id"]] and drained["status"] == "draining", drained
        moved = wait_settled(api, guest["id"])
        assert moved["state"] == "running" and moved["host"] != here and not moved["reason"], moved
        admin.wait_for(f"/hosts/{here}", lambda r: r.json()["status"] == "disabled", timeout=30)
        with ssh(moved, key) as session:
            assert run(session, "cat /tmp/state") == "kept"   # the same guest, moved twice
        assert nothing_of(linked_stack, here, guest) == {}
    finally:
        admin.call("POST", f"/hosts/{here}/enable", 200)


def test_a_stopped_guest_migrates_cold_with_its_disk(linked_stack, traveller):
    admin, api, key, guest = traveller
    with ssh(api.call("GET", f"/instances/{guest['id']}", 200).json(), key) as session:
        run(session, "echo cold > /data/cold; sync")
    api.call("POST", f"/instances/{guest['id']}/stop", 202)
    stopped = api.wait_for(f"/instances/{guest['id']}", lambda r: r.json()["state"] == "stopped", timeout=120).json()
    here = stopped["host"]
    admin.call("POST", f"/instances/{guest['id']}/migrate", 202, json={})
    moved = wait_settled(api, guest["id"])
    assert moved["state"] == "stopped" and moved["host"] != here and not moved["reason"], moved
    assert nothing_of(linked_stack, here, guest) == {}
    api.call("POST", f"/instances/{guest['id']}/start", 202)
    started = wait_ready(api, guest["id"])
    assert started["state"] == "running" and started["host"] == moved["host"], started
    with ssh(started, key) as session:
        assert run(session, "cat /data/cold") == "cold"   # its disk came along
