"""The agent on a real private QEMU host (labcloud.qemu_host) with the tiny image: kernel boot,
SSH through the forwarded endpoint, metadata from the namespace, console, ACPI stop, reboot, and
the lifecycle event of a guest powering itself off. Marked `realguest` (needs root, libvirtd,
QEMU and the Debian package cache the image builder fills)."""
import datetime
import os
import socket
import subprocess
import tempfile
import time
import uuid

import paramiko
import pytest
from nameko.events import event_handler
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter

from common.errors import NotFound
from hostagent import dhcp
from hostagent.service import make_service
from tests.hostagent.qemu_hosts import agent_config, guest_key, private_qemu_host, tiny_guest_spec
from common.netns import nsenter_argv
from tests.realguest.guests import SSHClient

pytestmark = pytest.mark.realguest

IMAGE_CACHE = os.path.join(tempfile.gettempdir(), "labcloud-debcache")
GUEST_IP, GATEWAY, MAC = "10.99.0.20", "10.99.0.1", "aa:00:0a:63:00:14"


class Guests:
    """Stands in for the instances service (metadata) and for its lifecycle listener."""
    name = "instances"
    public_key = None
    events = []

    @rpc
    def get_guest_metadata(self, host, ip):
        if ip != GUEST_IP:
            raise NotFound(ip)
        return {"instance_id": "x", "hostname": "web-1", "local_ipv4": ip, "mac": MAC,
                "public_keys": [Guests.public_key], "instance_type": "tiny",
                "availability_zone": host, "user_data": "#!/bin/sh\necho from-user-data > /tmp/ud\n"}

    @event_handler("hostagent", "domain_lifecycle")
    def lifecycle(self, payload):
        # How long the event took from libvirt's callback (its `at`) to a listener.
        delay = (datetime.datetime.now(datetime.timezone.utc)
                 - datetime.datetime.fromisoformat(payload["at"])).total_seconds()
        Guests.events.append((time.monotonic(), payload, delay))
        return payload

    @event_handler("hostagent", "domain_ssh_ready")
    def ssh_ready(self, payload):
        return payload


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    from imagebuilder import build
    data_dir = str(tmp_path_factory.mktemp("img"))
    build.build("tiny", data_dir=data_dir, cache_dir=IMAGE_CACHE, log=lambda *_: None)
    return os.path.join(data_dir, "images", "tiny")


@pytest.fixture(scope="module")
def qemu_host(tmp_path_factory):
    yield from private_qemu_host(tmp_path_factory, "rq1")


@pytest.fixture
def key(tmp_path):
    return guest_key(tmp_path, Guests)


@pytest.fixture
def agent(container_factory, service_config, qemu_host, key, tmp_path):
    config = agent_config(service_config, qemu_host, tmp_path, "rq", "22980-22999", heartbeat_s=5)
    listener = container_factory(Guests, config)
    listener.start()
    container = container_factory(make_service("rq1"), config)
    container.start()
    return config, listener


def ssh(port, key, command, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        client = SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect("127.0.0.1", port, username="root", pkey=key, timeout=5, banner_timeout=5,
                           auth_timeout=5, look_for_keys=False, allow_agent=False)
            _in, out, _err = client.exec_command(command, timeout=10)
            return out.read().decode()
        except (paramiko.SSHException, OSError, EOFError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
        finally:
            client.close()


def lifecycle_of(instance_id, state):
    return lambda _ctx, result, _exc: result["instance_id"] == instance_id and result["state"] == state


def assert_per_device_stats(qemu_host, instance_id):
    """QEMU's bulk stats (getAllDomainStats) give the per-vCPU, per-disk and per-NIC counters the
    metrics service stores; the guest has booted and answered SSH, so they moved."""
    from hostagent import host_stats, stats
    conn = qemu_host.open()
    try:
        sample = {s["instance_id"]: s for s in stats.collect(conn)}[instance_id]
        host_sample = host_stats.collect_host(conn)
    finally:
        conn.close()
    assert len(sample["vcpu_time_ns"]) == 1 and sample["vcpu_time_ns"][0] > 0
    assert sample["disks"][0]["device"] == "vda" and sample["disks"][0]["read_bytes"] > 0
    assert sample["disks"][0]["read_reqs"] > 0 and sample["disk_read_bytes"] >= sample["disks"][0]["read_bytes"]
    assert sample["nics"][0]["index"] == 0 and sample["nics"][0]["rx_bytes"] > 0
    assert sample["memory_kib"] == 128 * 1024
    assert host_sample["cpu_busy_ns"] and all(v is None or v > 0 for v in host_sample["cpu_busy_ns"])


def dhcp_macs(qemu_host):
    from hostagent import dhcp
    conn = qemu_host.open()
    try:
        return {entry["mac"] for entry in dhcp.dhcp_hosts(conn)}
    finally:
        conn.close()


def test_real_guest_lifecycle(agent, image, key, tmp_path, qemu_host):
    config, listener = agent
    instance_id = str(uuid.uuid4())
    spec = tiny_guest_spec(image, tmp_path, instance_id, f"rq-{instance_id[:8]}", MAC, GUEST_IP, "web-1",
                           GATEWAY, "255.255.252.0")
    with ServiceRpcProxy("hostagent_rq1", config, timeout=120) as host:
        try:
            with entrypoint_waiter(listener, "ssh_ready", timeout=60,
                                   callback=lambda _c, r, _e: r["instance_id"] == instance_id) as ready:
                with entrypoint_waiter(listener, "lifecycle", timeout=30,
                                       callback=lifecycle_of(instance_id, "running")):
                    created = host.create_domain(spec)
            # The agent saw the guest's SSH answer from inside the host's namespace.
            assert ready.get()["host"] == "rq1" and ready.get()["seq"] > created["seq"]
            port = created["ssh_port"]
            assert created["state"] == "running" and 22980 <= port <= 22999
            assert MAC in dhcp_macs(qemu_host)

            # SSH through the endpoint with the key the metadata server handed the guest.
            assert ssh(port, key, "hostname; cat /tmp/ud").split() == ["web-1", "from-user-data"]
            assert "Linux version" in host.get_console({"instance_id": instance_id})["output"]
            assert_per_device_stats(qemu_host, instance_id)

            # ACPI stop: the guest powers off by itself, well before the timeout.
            started = time.monotonic()
            with entrypoint_waiter(listener, "lifecycle", timeout=30,
                                   callback=lifecycle_of(instance_id, "shutoff")):
                assert host.stop_domain({"instance_id": instance_id, "timeout": 20})["state"] == "shutoff"
            assert time.monotonic() - started < 15

            with entrypoint_waiter(listener, "lifecycle", timeout=30,
                                   callback=lifecycle_of(instance_id, "running")):
                assert host.start_domain({"instance_id": instance_id})["ssh_port"] == port
            ssh(port, key, "true")

            rebooted = host.reboot_domain({"instance_id": instance_id, "timeout": 20})
            assert rebooted["state"] == "running"
            ssh(port, key, "true")  # up again

            # The guest powers itself off: the event comes at once, not at the next poll.
            Guests.events.clear()
            with entrypoint_waiter(listener, "lifecycle", timeout=30,
                                   callback=lifecycle_of(instance_id, "shutoff")):
                try:
                    ssh(port, key, "poweroff", timeout=10)
                except Exception:  # noqa: BLE001  (the session may die with the guest)
                    pass
                asked = time.monotonic()
            seen_at, _payload, delay = [e for e in Guests.events if e[1]["state"] == "shutoff"][0]
            # The guest's own shutdown (~1-2 s) plus the event's way here: no polling interval.
            assert seen_at - asked < 5 and delay < 1
        finally:
            host.destroy_domain({"instance_id": instance_id})
        assert host.list_domains() == []
        assert MAC not in dhcp_macs(qemu_host)  # delete leaves no DHCP entry behind
        assert not os.path.exists(os.path.join(config["CONSOLE_DIR"], f"{instance_id}.log"))


def test_refused_create_leaves_no_dhcp_entry_neighbour_or_port(agent, tmp_path, qemu_host):
    """libvirt refuses the definition (a domain of that name exists with another UUID): the agent
    undoes what it made for the guest before defining it, since no domain will carry the record."""
    config, _listener = agent
    instance_id = str(uuid.uuid4())
    conn = qemu_host.open()
    squatter = conn.defineXML(
        "<domain type='qemu'><name>rq-clash</name><memory unit='MiB'>64</memory>"
        "<os><type arch='x86_64'>hvm</type></os></domain>")
    spec = {"instance_id": instance_id, "name": "rq-clash", "vcpus": 1, "memory_mib": 64,
            "cpu_weight": 1024, "cpu_cap": 0, "disk_path": str(tmp_path / "none.qcow2"),
            "mac": MAC, "ip": GUEST_IP, "hostname": "web-1"}
    try:
        with ServiceRpcProxy("hostagent_rq1", config, timeout=60) as host:
            with pytest.raises(Exception) as refused:
                host.create_domain(spec)
            assert "rq-clash" in str(refused.value)
        assert MAC not in dhcp_macs(qemu_host)
        neighbours = subprocess.run(nsenter_argv(qemu_host.netns) + ["ip", "neigh", "show", GUEST_IP],
                                    capture_output=True, text=True, check=True).stdout
        assert "PERMANENT" not in neighbours
        for port in range(22980, 23000):  # the agent's SSH_PORT_RANGE
            with socket.socket() as probe:
                assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still forwarded"
    finally:
        squatter.undefine()
        conn.close()


def blank_guest(tmp_path):
    """A domain spec over an empty 16 MiB disk (nothing boots: enough for the host-side entries)."""
    instance_id = str(uuid.uuid4())
    disk = tmp_path / "blank.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    return instance_id, {"instance_id": instance_id, "name": f"rq-{instance_id[:8]}", "vcpus": 1,
                         "memory_mib": 64, "cpu_weight": 1024, "cpu_cap": 0, "disk_path": str(disk),
                         "mac": MAC, "ip": GUEST_IP, "hostname": "web-1"}


def test_destroy_of_a_domain_lost_behind_the_agents_back_removes_everything(agent, tmp_path, qemu_host):
    """The domain (and the metadata naming its MAC and IP) is gone: destroy_domain still finds the
    DHCP entry by its name, and removes it, the static neighbour entry and the SSH forward."""
    config, _listener = agent
    instance_id, spec = blank_guest(tmp_path)
    conn = qemu_host.open()
    try:
        with ServiceRpcProxy("hostagent_rq1", config, timeout=60) as host:
            port = host.create_domain(spec)["ssh_port"]
            inventory = host.get_inventory()
            assert {"name": "i-" + instance_id.replace("-", ""), "mac": MAC, "ip": GUEST_IP,
                    "instance_id": instance_id} in inventory["dhcp_entries"]
            assert {"instance_id": instance_id, "port": port} in inventory["forwards"]
            domain = conn.lookupByUUIDString(instance_id)
            domain.destroy()
            domain.undefine()
            assert host.destroy_domain({"instance_id": instance_id}) == {"deleted": False}
            inventory = host.get_inventory()
            assert inventory["domains"] == [] and inventory["forwards"] == []
            assert instance_id not in {entry["instance_id"] for entry in inventory["dhcp_entries"]}
        assert MAC not in dhcp_macs(qemu_host)
        neighbours = subprocess.run(nsenter_argv(qemu_host.netns) + ["ip", "neigh", "show", GUEST_IP],
                                    capture_output=True, text=True, check=True).stdout
        assert "PERMANENT" not in neighbours
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0
    finally:
        conn.close()


def test_start_brings_back_the_network_entries_a_new_host_network_lacks(agent, tmp_path, qemu_host):
    """After a restart the host's network and namespace are new: the DHCP and static neighbour
    entries of a stopped guest are gone. start_domain puts them back from the domain's metadata."""
    config, _listener = agent
    instance_id, spec = blank_guest(tmp_path)
    conn = qemu_host.open()
    try:
        with ServiceRpcProxy("hostagent_rq1", config, timeout=60) as host:
            host.create_domain(spec)
            host.stop_domain({"instance_id": instance_id, "timeout": 1})
            network = conn.networkLookupByName(qemu_host.network_name)
            dhcp.remove_dhcp_host(conn, MAC, network=qemu_host.network_name)
            subprocess.run(nsenter_argv(qemu_host.netns) + ["ip", "neigh", "flush", GUEST_IP], check=True)
            assert MAC not in dhcp_macs(qemu_host) and network.isActive()

            assert host.start_domain({"instance_id": instance_id})["state"] == "running"
            assert MAC in dhcp_macs(qemu_host)
            neighbours = subprocess.run(nsenter_argv(qemu_host.netns) + ["ip", "neigh", "show", GUEST_IP],
                                        capture_output=True, text=True, check=True).stdout
            assert "PERMANENT" in neighbours
            host.destroy_domain({"instance_id": instance_id})
    finally:
        conn.close()
