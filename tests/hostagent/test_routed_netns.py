"""A routed subnet in namespaces (issue 11): the host agent, on a private libvirtd host
(labcloud.qemu_host), makes the subnet's libvirt network (`<forward mode='route'/>`, its own bridge)
through its RPC; an "uplink" namespace acts as the provider's router, which routes the subnet to the
host's uplink address only; a "guest" namespace stands in for a guest plugged into the routed bridge.
The router and the guest reach each other, and nothing on the uplink ever carries the guest's MAC:
the router's neighbour table and every frame captured on its uplink port name the host's MAC only.
"""
import os
import time
import uuid
import xml.etree.ElementTree as ET

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from common import netns
from common.errors import Conflict
from hostagent import dhcp, routed
from hostagent.service import make_service
from tests.hostagent.qemu_hosts import private_qemu_host
from tests.hostagent.routed_uplink import (
    HOST_UPLINK_IP, ROUTER_IP, capture, check_only_host_mac, frames, ping, router_neighbours, sysctl, uplink_macs, uplink_router)

SUBNET = {"name": "lcr-hetzner", "cidr": "10.77.0.0/24", "gateway": "10.77.0.1", "dns_servers": []}
GUEST_IP, GUEST_MAC = "10.77.0.10", "aa:00:0a:4d:00:0a"


@pytest.fixture(scope="module")
def qemu_host(tmp_path_factory):
    yield from private_qemu_host(tmp_path_factory, "rt1")


@pytest.fixture
def agent(container_factory, service_config, qemu_host, tmp_path):
    config = service_config(LIBVIRT_URI=qemu_host.uri, HOST_NETNS=qemu_host.netns, HOST_NETWORK="labcloud",
                            POOL_NAME="rt", POOL_PATH=str(tmp_path / "pool"), CONSOLE_DIR=str(tmp_path / "console"),
                            SSH_PORT_RANGE="22940-22949", HEARTBEAT_INTERVAL=60, STATS_INTERVAL=60)
    container_factory(make_service("rt1"), config).start()
    return config


@pytest.fixture
def uplink(qemu_host):
    with uplink_router(qemu_host.netns, SUBNET["cidr"]) as router:
        yield router


@pytest.fixture
def guest(qemu_host):
    """A namespace standing in for a guest: its `eth0` (the guest's MAC and address, default route
    via the subnet's gateway) is a veth whose other end `gtap0` is for a routed bridge."""
    name = f"lct-{uuid.uuid4().hex[:8]}"
    netns.create(name)
    try:
        netns.run(name, ["ip", "link", "add", "eth0", "address", GUEST_MAC, "type", "veth", "peer", "name",
                         "gtap0", "netns", netns.netns_path(qemu_host.netns)])
        netns.run(name, ["ip", "addr", "add", f"{GUEST_IP}/24", "dev", "eth0"])
        netns.run(name, ["ip", "link", "set", "eth0", "up"])
        netns.run(name, ["ip", "route", "add", "default", "via", SUBNET["gateway"]])
        yield name
    finally:
        netns.delete(name)


def test_router_and_guest_reach_each_other_and_only_the_host_mac_is_on_the_uplink(
        agent, qemu_host, uplink, guest):
    with ServiceRpcProxy("hostagent_rt1", agent) as host:
        started = time.monotonic()
        made = host.ensure_routed_network(SUBNET)
        made_s, started = time.monotonic() - started, time.monotonic()
        again = host.ensure_routed_network(SUBNET)   # at-least-once delivery: by name, nothing new
        print(f"ensure_routed_network: {made_s * 1000:.0f} ms to make, {(time.monotonic() - started) * 1000:.0f} ms "
              "when it exists")
    assert (made["created"], again["created"]) == (True, False)
    assert made["forward_mode"] == "route" and made["active"] and made["bridge"] == again["bridge"]
    bridge = made["bridge"]

    conn = qemu_host.open()
    try:
        network = conn.networkLookupByName(SUBNET["name"])
        root = ET.fromstring(network.XMLDesc(0))
        assert root.find("forward").get("mode") == "route"
        assert root.find("ip").get("address") == SUBNET["gateway"] and network.autostart()
        # The DHCP entry a guest of this subnet gets (what create_domain adds), served by its dnsmasq.
        dhcp.add_dhcp_host(conn, GUEST_MAC, GUEST_IP, "i-" + "ab" * 16, network=SUBNET["name"])
    finally:
        conn.close()
    hostsfile = os.path.join(qemu_host.dirs["lib"], "dnsmasq", f"{SUBNET['name']}.hostsfile")
    assert f"{GUEST_MAC},{GUEST_IP}" in open(hostsfile).read()

    # The routed bridge is not on the shared segment: no port of the link namespace joins it.
    ports = netns.run(qemu_host.netns, ["ip", "-o", "link", "show", "master", bridge]).stdout
    assert "lcseg" not in ports and "lcmig" not in ports
    assert sysctl(qemu_host.netns, "net.ipv4.ip_forward") == "1"
    assert sysctl(qemu_host.netns, "net.ipv4.conf.all.proxy_arp") == "0"
    assert sysctl(qemu_host.netns, f"net.ipv4.conf.{bridge}.proxy_arp") == "0"

    # Plug the stand-in guest into the routed bridge, as libvirt plugs a guest's tap.
    netns.run(qemu_host.netns, ["ip", "link", "set", "gtap0", "master", bridge])
    netns.run(qemu_host.netns, ["ip", "link", "set", "gtap0", "up"])
    host_mac, router_mac = uplink_macs(qemu_host.netns, uplink)
    sniffer = capture(uplink, "up0")
    try:
        started = time.monotonic()
        assert ping(uplink, GUEST_IP), "the router does not reach the guest through the host"
        router_to_guest_s = time.monotonic() - started
        assert ping(guest, ROUTER_IP), "the guest does not reach the router"
        seen = frames(sniffer)
    finally:
        sniffer.close()

    print(f"router -> guest first echo answered in {router_to_guest_s * 1000:.1f} ms; "
          f"{len(seen)} frames on the uplink")
    # The guest's packets cross the uplink in frames of the host's MAC only.
    check_only_host_mac(seen, host_mac, router_mac, GUEST_IP, GUEST_MAC)

    neighbours = router_neighbours(uplink)
    print("router's neighbours:", neighbours.strip())
    assert HOST_UPLINK_IP in neighbours and host_mac in neighbours
    assert GUEST_IP not in neighbours and GUEST_MAC not in neighbours
    assert [line.split()[0] for line in neighbours.splitlines()] == [HOST_UPLINK_IP]


def test_network_xml_is_a_route_network_of_its_own_bridge():
    xml = ET.fromstring(routed.network_xml({**SUBNET, "dns_servers": ["9.9.9.9"]}, "route",
                                           [{"mac": GUEST_MAC, "ip": GUEST_IP, "name": "i-1"}]))
    assert xml.find("forward").get("mode") == "route"
    bridge = xml.find("bridge").get("name")
    assert bridge == routed.bridge_name(SUBNET["name"]) and len(bridge) <= 15 and bridge != "lcbr0"
    assert (xml.find("ip").get("address"), xml.find("ip").get("netmask")) == ("10.77.0.1", "255.255.255.0")
    assert xml.find("./ip/dhcp/host").get("mac") == GUEST_MAC and xml.find("./ip/dhcp/range") is None
    assert xml.find("./dns/forwarder").get("addr") == "9.9.9.9"


def neighbours_on(namespace, bridge):
    return netns.run(namespace, ["ip", "neigh", "show", "dev", bridge]).stdout


def test_a_guest_of_a_routed_subnet_joins_its_network_and_leaves_nothing_behind(agent, qemu_host, tmp_path):
    """create_domain with the subnet's network (as the saga sends it): the network is made on the
    way, the guest's tap is on the routed bridge, its DHCP and neighbour entries are there; a stop
    and start puts them back from the domain's own definition; destroy removes them; the network
    goes when its subnet is deleted, not while a domain names it."""
    import subprocess
    disk = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    instance_id, ip, mac = str(uuid.uuid4()), "10.78.0.5", "aa:00:0a:4e:00:05"
    subnet = {"name": "lcr-second", "cidr": "10.78.0.0/24", "gateway": "10.78.0.1", "dns_servers": []}
    spec = {"instance_id": instance_id, "name": f"lc-{instance_id}", "vcpus": 1, "memory_mib": 64,
            "cpu_weight": 256, "cpu_cap": 0, "disk_path": str(disk), "mac": mac, "ip": ip, "network": subnet}
    bridge = routed.bridge_name(subnet["name"])
    with ServiceRpcProxy("hostagent_rt1", agent) as host:
        try:
            assert host.create_domain(spec)["state"] == "running"
            assert host.create_domain(spec)["state"] == "running"   # redelivered: the same domain
            conn = qemu_host.open()
            try:
                domain = conn.lookupByUUIDString(instance_id)
                interface = ET.fromstring(domain.XMLDesc(0)).find("./devices/interface")
                assert interface.find("source").get("network") == subnet["name"]
                assert interface.find("source").get("bridge") == bridge
                tap = interface.find("target").get("dev")
                assert {e["mac"] for e in dhcp.dhcp_hosts(conn, subnet["name"])} == {mac}
                assert mac not in {e["mac"] for e in dhcp.dhcp_hosts(conn, "labcloud")}
            finally:
                conn.close()
            ports = netns.run(qemu_host.netns, ["ip", "-o", "link", "show", "master", bridge]).stdout
            assert tap in ports
            assert f"{ip} lladdr {mac} PERMANENT" in neighbours_on(qemu_host.netns, bridge)

            host.stop_domain({"instance_id": instance_id, "timeout": 1})
            netns.run(qemu_host.netns, ["ip", "neigh", "del", ip, "dev", bridge])
            assert host.start_domain({"instance_id": instance_id})["state"] == "running"
            assert f"{ip} lladdr {mac} PERMANENT" in neighbours_on(qemu_host.netns, bridge)
            # Its subnet deleted while a domain still names the network: the network stays.
            with pytest.raises(Conflict) as refused:
                host.remove_routed_network({"name": subnet["name"]})
            assert set(refused.value.fields) == {"network"}
        finally:
            gone = host.destroy_domain({"instance_id": instance_id})
        conn = qemu_host.open()
        try:
            assert dhcp.dhcp_hosts(conn, subnet["name"]) == []   # destroy found its entry there
        finally:
            conn.close()
        assert ip not in neighbours_on(qemu_host.netns, bridge)
        assert host.remove_routed_network({"name": subnet["name"]}) == {"removed": True}
        assert host.remove_routed_network({"name": subnet["name"]}) == {"removed": False}   # redelivered
    assert gone["deleted"]
    assert bridge not in netns.run(qemu_host.netns, ["ip", "-o", "link"]).stdout
