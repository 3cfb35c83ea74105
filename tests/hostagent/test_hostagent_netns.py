"""The agent with a host namespace (HOST_NETNS) on test:///default: SSH endpoints forward into the
namespace and the metadata server answers there, asking a stand-in instances service."""
import json
import os
import socket
import subprocess
import tempfile
import uuid

import eventlet
import pytest
from nameko.events import event_handler
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter

from common.errors import NotFound
from hostagent.service import make_service
from common.netns import nsenter_argv
from tests.hostagent.netutil import add_address, connect_from, echo_server, http_get, ssh_server
from tests.hostagent.payloads import without_seq

GUEST_IP = "10.99.0.2"
METADATA = ("169.254.169.254", 80)


class FakeInstances:
    """Answers get_guest_metadata as the instances service does, for one guest."""
    name = "instances"
    asked = []

    @rpc
    def get_guest_metadata(self, host, ip):
        FakeInstances.asked.append((host, ip))
        if ip != GUEST_IP:
            raise NotFound(f"no instance at {ip} on {host}")
        return {"instance_id": "7a1b2c3d-0000-4000-8000-000000000001", "hostname": "web-1",
                "local_ipv4": ip, "mac": "aa:00:0a:63:00:02", "public_keys": ["ssh-ed25519 AAAA k"],
                "instance_type": "m1.tiny", "availability_zone": host, "user_data": "hello"}


@pytest.fixture
def host_netns(netns):
    add_address(netns, f"{METADATA[0]}/32")
    add_address(netns, "10.99.0.1/22")
    add_address(netns, f"{GUEST_IP}/22")  # stands in for the guest on the bridge
    sshd, listener = echo_server(netns, (GUEST_IP, 22))
    yield netns
    sshd.kill()
    listener.close()


@pytest.fixture
def config(service_config, host_netns, tmp_path):
    pool = f"ns-{uuid.uuid4().hex[:8]}"
    return service_config(LIBVIRT_URI="test:///default", POOL_NAME=pool, POOL_PATH=f"/labcloud-test/{pool}",
                          HOST_NETNS=host_netns, SSH_PORT_RANGE="22950-22979",
                          CONSOLE_DIR=str(tmp_path / "console"), METADATA_CACHE_SECONDS=0)


@pytest.fixture
def agent(container_factory, config):
    container_factory(FakeInstances, config).start()
    container = container_factory(make_service("n1"), config)
    container.start()
    return container


def spec(instance_id):
    return {"instance_id": instance_id, "name": f"vm-{instance_id[:8]}", "vcpus": 1, "memory_mib": 128,
            "cpu_weight": 1024, "cpu_cap": 0, "disk_path": "/labcloud-test/n.qcow2",
            "mac": "aa:00:0a:63:00:02", "ip": GUEST_IP, "hostname": "web-1"}


def ssh_roundtrip(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(b"SSH-2.0-test\r\n")
        return client.recv(100)


def test_ssh_endpoint_follows_the_domain(agent, config, conn, container_factory):
    # `conn` also keeps the test driver's state alive while no agent holds a connection to it.
    instance_id = str(uuid.uuid4())
    with ServiceRpcProxy("hostagent_n1", config) as host:
        created = host.create_domain(spec(instance_id))
        port = created["ssh_port"]
        assert 22950 <= port <= 22979
        # Redelivery: same port.
        assert without_seq(host.create_domain(spec(instance_id))) == without_seq(created)
        assert [without_seq(d) for d in host.list_domains()] == [without_seq(created)]
        assert ssh_roundtrip(port) == b"echo:SSH-2.0-test\r\n"
        # The port is recorded with the domain, for a restarted agent.
        assert f'ssh_port="{port}"' in conn.lookupByUUIDString(instance_id).XMLDesc(0)
        assert host.stop_domain({"instance_id": instance_id})["ssh_port"] == port

    # A new agent (restart) forwards the recorded port again once the domain runs.
    agent.stop()
    with pytest.raises(ConnectionRefusedError):
        ssh_roundtrip(port)
    restarted = container_factory(make_service("n1"), config)
    restarted.start()
    with ServiceRpcProxy("hostagent_n1", config) as host:
        assert host.start_domain({"instance_id": instance_id})["ssh_port"] == port
        assert ssh_roundtrip(port) == b"echo:SSH-2.0-test\r\n"
        assert host.destroy_domain({"instance_id": instance_id}) == {"deleted": True}
    with pytest.raises(ConnectionRefusedError):
        ssh_roundtrip(port)  # delete leaves no forwarded port behind


def test_running_domains_get_their_forward_back_when_the_agent_starts(agent, config, container_factory,
                                                                      conn):
    # `conn` keeps the test driver's state alive while no agent holds a connection to it.
    instance_id = str(uuid.uuid4())
    with ServiceRpcProxy("hostagent_n1", config) as host:
        port = host.create_domain(spec(instance_id))["ssh_port"]
    agent.stop()
    restarted = container_factory(make_service("n1"), config)
    restarted.start()
    try:
        assert ssh_roundtrip(port) == b"echo:SSH-2.0-test\r\n"
    finally:
        with ServiceRpcProxy("hostagent_n1", config) as host:
            host.destroy_domain({"instance_id": instance_id})


def test_metadata_server_answers_guests_in_the_namespace(agent, host_netns):
    import eventlet
    deadline = eventlet.Timeout(10)
    try:
        while True:  # the server binds shortly after the agent starts
            try:
                sock = connect_from(host_netns, GUEST_IP, METADATA)
                break
            except ConnectionRefusedError:
                eventlet.sleep(0.05)
    finally:
        deadline.cancel()
    assert http_get(sock, "/latest/meta-data/hostname") == (200, b"web-1")
    assert http_get(connect_from(host_netns, GUEST_IP, METADATA), "/latest/user-data") == (200, b"hello")
    assert http_get(connect_from(host_netns, GUEST_IP, METADATA),
                    "/latest/meta-data/placement/availability-zone") == (200, b"n1")
    # Another source address in the namespace is no guest: nothing to read.
    assert http_get(connect_from(host_netns, "10.99.0.1", METADATA),
                    "/latest/meta-data/hostname")[0] == 404
    assert ("n1", GUEST_IP) in FakeInstances.asked and ("n1", "10.99.0.1") in FakeInstances.asked


@pytest.fixture(scope="module")
def debian_cloud_init(tmp_path_factory):
    """Debian 12's cloud-init, unpacked (not installed): the client a Debian cloud image runs."""
    from imagebuilder import packages
    [deb] = packages.fetch(["cloud-init"], os.path.join(tempfile.gettempdir(), "labcloud-debcache"),
                           log=lambda *_: None)
    root = tmp_path_factory.mktemp("cloud-init")
    subprocess.run(["dpkg-deb", "-x", deb.path, str(root)], check=True)
    return str(root / "usr" / "lib" / "python3" / "dist-packages")


@pytest.mark.realguest  # downloads the Debian package
def test_cloud_init_reads_its_guest_data_through_the_ec2_datasource(agent, host_netns, debian_cloud_init):
    """An image made elsewhere (cloud-init's EC2 datasource) finds the same data as the tiny image."""
    probe = os.path.join(os.path.dirname(__file__), "cloudinit_probe.py")
    done = subprocess.run(nsenter_argv(host_netns) + ["/usr/bin/python3", probe, debian_cloud_init, GUEST_IP],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {
        "found": True, "api_version": "2021-03-23",
        "instance_id": "7a1b2c3d-0000-4000-8000-000000000001", "hostname": "web-1",
        "local_ipv4": GUEST_IP, "public_keys": ["ssh-ed25519 AAAA k"], "user_data": "hello",
        "availability_zone": "n1", "instance_type": "m1.tiny"}


SSH_GUEST_IP = "10.99.0.3"  # a guest whose SSH server the test starts and stops


class ReadyListener:
    """Stands in for the instances service's listener of `domain_ssh_ready`."""
    name = "ssh_ready_listener"
    seen = []

    @event_handler("hostagent", "domain_ssh_ready")
    def ready(self, payload):
        ReadyListener.seen.append(payload)
        return payload


@pytest.fixture
def ready_listener(container_factory, config):
    ReadyListener.seen = []
    container = container_factory(ReadyListener, config)
    container.start()
    return container


@pytest.fixture
def guest_sshd(host_netns):
    """start() brings the guest's SSH up (as a booting guest's dropbear would), stop() takes it down."""
    add_address(host_netns, f"{SSH_GUEST_IP}/22")
    running = []

    class Sshd:
        @staticmethod
        def start():
            running.append(ssh_server(host_netns, (SSH_GUEST_IP, 22)))

        @staticmethod
        def stop():
            while running:
                thread, listener = running.pop()
                thread.kill()
                listener.close()
    yield Sshd
    Sshd.stop()


def ssh_guest_spec(instance_id):
    return {**spec(instance_id), "mac": "aa:00:0a:63:00:03", "ip": SSH_GUEST_IP}


def ready_of(instance_id):
    return lambda _ctx, result, _exc: result["instance_id"] == instance_id


def ready_events(instance_id):
    return [seen for seen in ReadyListener.seen if seen["instance_id"] == instance_id]


def test_domain_ssh_ready_follows_each_start(agent, config, ready_listener, guest_sshd):
    instance_id = str(uuid.uuid4())
    guest_sshd.start()
    with ServiceRpcProxy("hostagent_n1", config) as host:
        try:
            with entrypoint_waiter(ready_listener, "ready", timeout=10, callback=ready_of(instance_id)) as ready:
                created = host.create_domain(ssh_guest_spec(instance_id))
            event = ready.get()
            assert set(event) == {"host", "instance_id", "at", "seq"}
            assert event["host"] == "n1" and event["seq"] > created["seq"]

            with entrypoint_waiter(ready_listener, "ready", timeout=10, callback=ready_of(instance_id)) as again:
                host.stop_domain({"instance_id": instance_id, "timeout": 0})
                started = host.start_domain({"instance_id": instance_id})
            assert again.get()["seq"] > started["seq"] > event["seq"]

            with entrypoint_waiter(ready_listener, "ready", timeout=10, callback=ready_of(instance_id)) as rebooted:
                host.reboot_domain({"instance_id": instance_id, "timeout": 0.2})
            assert rebooted.get()["seq"] > again.get()["seq"]
        finally:
            host.destroy_domain({"instance_id": instance_id})



def test_stop_and_destroy_cancel_the_probe_and_a_new_start_replaces_it(agent, config, ready_listener,
                                                                      guest_sshd):
    stopped_id, destroyed_id, restarted_id = (str(uuid.uuid4()) for _ in range(3))
    with ServiceRpcProxy("hostagent_n1", config) as host:
        try:
            # The guests' SSH is not up yet: every probe keeps trying.
            for instance_id in (stopped_id, destroyed_id, restarted_id):
                host.create_domain(ssh_guest_spec(instance_id))
            host.create_domain(ssh_guest_spec(restarted_id))  # redelivered: replaces its probe
            host.start_domain({"instance_id": restarted_id})  # and again
            host.stop_domain({"instance_id": stopped_id, "timeout": 0})
            assert host.destroy_domain({"instance_id": destroyed_id}) == {"deleted": True}

            with entrypoint_waiter(ready_listener, "ready", timeout=10, callback=ready_of(restarted_id)):
                guest_sshd.start()
            eventlet.sleep(1.0)  # time for any other probe to report (they poll every 0.1 s)
            assert len(ready_events(restarted_id)) == 1  # one probe, one report
            assert ready_events(stopped_id) == [] and ready_events(destroyed_id) == []
        finally:
            for instance_id in (stopped_id, restarted_id):
                host.destroy_domain({"instance_id": instance_id})


def test_probe_that_times_out_emits_nothing(container_factory, config, ready_listener, guest_sshd):
    container_factory(make_service("n1"), {**config, "SSH_READY_TIMEOUT": 0.5}).start()
    instance_id = str(uuid.uuid4())
    with ServiceRpcProxy("hostagent_n1", config) as host:
        try:
            host.create_domain(ssh_guest_spec(instance_id))
            eventlet.sleep(1.0)  # the probe gives up after 0.5 s
            guest_sshd.start()
            eventlet.sleep(0.5)
            assert ready_events(instance_id) == []
        finally:
            host.destroy_domain({"instance_id": instance_id})


def test_inventory_lists_forwards_and_destroy_removes_the_forward_of_a_lost_domain(agent, config, conn):
    instance_id = str(uuid.uuid4())
    with ServiceRpcProxy("hostagent_n1", config) as host:
        port = host.create_domain(spec(instance_id))["ssh_port"]
        inventory = host.get_inventory()
        assert inventory["forwards"] == [{"instance_id": instance_id, "port": port}]
        assert [d["ssh_port"] for d in inventory["domains"]] == [port]
        domain = conn.lookupByUUIDString(instance_id)  # lost behind the agent's back
        domain.destroy()
        domain.undefine()
        assert host.destroy_domain({"instance_id": instance_id}) == {"deleted": False}
        assert host.get_inventory()["forwards"] == []
    with pytest.raises(ConnectionRefusedError):
        ssh_roundtrip(port)
