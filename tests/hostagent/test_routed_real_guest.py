"""A real guest (the tiny image, QEMU TCG) on a routed subnet (issue 11), on a private libvirtd host
(labcloud.qemu_host) whose only way out is an "uplink" to a router namespace that routes the subnet
to the host's uplink address. The guest boots with the subnet's gateway (the host) as its router,
gets its key from the metadata service through it, answers SSH through the host's endpoint and to
the router directly, reaches the router itself; the uplink carries only the host's MAC."""
import socket
import time
import uuid

import paramiko
import pytest
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter
from nameko.events import event_handler

from common import netns
from common.errors import NotFound
from hostagent.service import make_service
from tests.hostagent.qemu_hosts import agent_config, guest_key, private_qemu_host, tiny_guest_spec
from tests.hostagent.routed_uplink import (
    ROUTER_IP, capture, check_only_host_mac, frames, router_neighbours, uplink_macs, uplink_router)
from tests.realguest.guests import SSHClient

pytestmark = pytest.mark.realguest

SUBNET = {"name": "lcr-provider", "cidr": "10.79.0.0/24", "gateway": "10.79.0.1", "dns_servers": []}
GUEST_IP, MAC = "10.79.0.10", "aa:00:0a:4f:00:0a"


class Guests:
    """Stands in for the instances service: the guest's metadata, and the agent's SSH-ready event."""
    name = "instances"
    public_key = None

    @rpc
    def get_guest_metadata(self, host, ip):
        if ip != GUEST_IP:
            raise NotFound(ip)
        return {"instance_id": "x", "hostname": "routed-1", "local_ipv4": ip, "mac": MAC,
                "public_keys": [Guests.public_key], "instance_type": "tiny", "availability_zone": host,
                "user_data": ""}

    @event_handler("hostagent", "domain_ssh_ready")
    def ssh_ready(self, payload):
        return payload


@pytest.fixture(scope="module")
def qemu_host(tmp_path_factory):
    yield from private_qemu_host(tmp_path_factory, "rg1")


@pytest.fixture(scope="module")
def image(image_builds):
    return image_builds.get()[0]


@pytest.fixture
def key(tmp_path):
    return guest_key(tmp_path, Guests)


@pytest.fixture
def agent(container_factory, service_config, qemu_host, key, tmp_path):
    config = agent_config(service_config, qemu_host, tmp_path, "rg", "22930-22939", heartbeat_s=60)
    listener = container_factory(Guests, config)
    listener.start()
    container_factory(make_service("rg1"), config).start()
    return config, listener


def ssh_command(sock_factory, key, command):
    client = SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect("guest", 22, username="root", pkey=key, sock=sock_factory(), timeout=10, banner_timeout=10,
                       auth_timeout=10, look_for_keys=False, allow_agent=False)
        _in, out, _err = client.exec_command(command, timeout=20)
        return out.read().decode()
    finally:
        client.close()


def test_a_real_guest_on_a_routed_subnet_is_reached_through_its_host_only(agent, qemu_host, image, key, tmp_path):
    config, listener = agent
    instance_id = str(uuid.uuid4())
    spec = tiny_guest_spec(image, tmp_path, instance_id, f"rg-{instance_id[:8]}", MAC, GUEST_IP, "routed-1",
                           SUBNET["gateway"], "255.255.255.0", network=SUBNET)
    with uplink_router(qemu_host.netns, SUBNET["cidr"]) as router, \
            ServiceRpcProxy("hostagent_rg1", config, timeout=120) as host:
        host_mac, router_mac = uplink_macs(qemu_host.netns, router)
        try:
            started = time.monotonic()
            with entrypoint_waiter(listener, "ssh_ready", timeout=90,
                                   callback=lambda _c, r, _e: r["instance_id"] == instance_id):
                created = host.create_domain(spec)
            boot_to_ssh_s = time.monotonic() - started
            # Through the host's SSH endpoint (127.0.0.1:port, forwarded inside the host's namespace).
            endpoint = ("127.0.0.1", created["ssh_port"])
            assert ssh_command(lambda: socket.create_connection(endpoint, timeout=10), key,
                               "hostname").strip() == "routed-1"   # its key came from the metadata service
            sniffer = capture(router, "up0")
            try:
                # From the provider's router, straight to the guest: routed by the host.
                routes = ssh_command(lambda: netns.connect_in_netns(router, (GUEST_IP, 22), timeout=10), key,
                                     f"ip route; ping -c 2 -W 2 {ROUTER_IP} >/dev/null && echo reached")
                seen = frames(sniffer)
            finally:
                sniffer.close()
        finally:
            gone = host.destroy_domain({"instance_id": instance_id})
        neighbours = router_neighbours(router)
    print(f"routed guest: boot to SSH {boot_to_ssh_s:.2f} s; {len(seen)} frames on the uplink; "
          f"router's neighbours: {neighbours.strip()}")
    assert gone["deleted"]
    assert f"default via {SUBNET['gateway']}" in routes and "reached" in routes
    check_only_host_mac(seen, host_mac, router_mac, GUEST_IP, MAC)
    assert MAC not in neighbours and GUEST_IP not in neighbours
