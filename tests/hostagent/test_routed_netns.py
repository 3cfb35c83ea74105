"""A routed subnet in namespaces (issue 11): the host agent, on a private libvirtd host
(labcloud.qemu_host), makes the subnet's libvirt network (`<forward mode='route'/>`, its own bridge)
through its RPC; an "uplink" namespace acts as the provider's router, which routes the subnet to the
host's uplink address only; a "guest" namespace stands in for a guest plugged into the routed bridge.
The router and the guest reach each other, and nothing on the uplink ever carries the guest's MAC:
the router's neighbour table and every frame captured on its uplink port name the host's MAC only.
"""
import json
import os
import select
import socket
import struct
import time
import uuid
import xml.etree.ElementTree as ET

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from common import netns
from hostagent import dhcp, routed
from hostagent.service import make_service
from tests.hostagent.qemu_hosts import private_qemu_host

SUBNET = {"name": "lcr-hetzner", "cidr": "10.77.0.0/24", "gateway": "10.77.0.1", "dns_servers": []}
GUEST_IP, GUEST_MAC = "10.77.0.10", "aa:00:0a:4d:00:0a"
# The provider's link to the host (inside our namespaces only).
ROUTER_IP, HOST_UPLINK_IP = "192.0.2.1", "192.0.2.2"
ETH_P_ALL = 0x0003


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
    """The router namespace, linked to the host's namespace by a veth: `up0` (router) - `uplink0`
    (host). The router routes the subnet via the host's uplink address and knows nothing else."""
    router = f"lct-{uuid.uuid4().hex[:8]}"
    netns.create(router)
    try:
        netns.run(router, ["ip", "link", "add", "up0", "type", "veth", "peer", "name", "uplink0",
                           "netns", netns.netns_path(qemu_host.netns)])
        netns.run(router, ["ip", "addr", "add", f"{ROUTER_IP}/30", "dev", "up0"])
        netns.run(router, ["ip", "link", "set", "up0", "up"])
        netns.run(qemu_host.netns, ["ip", "addr", "add", f"{HOST_UPLINK_IP}/30", "dev", "uplink0"])
        netns.run(qemu_host.netns, ["ip", "link", "set", "uplink0", "up"])
        netns.run(router, ["ip", "route", "add", SUBNET["cidr"], "via", HOST_UPLINK_IP])
        yield router
    finally:
        netns.delete(router)   # takes the veth pair with it


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


def mac_of(namespace, dev):
    # (nsenter --net keeps the machine's /sys: ask `ip` what the namespace's device is)
    return json.loads(netns.run(namespace, ["ip", "-j", "link", "show", "dev", dev]).stdout)[0]["address"]


def sysctl(namespace, key):
    return netns.run(namespace, ["sysctl", "-n", key]).stdout.strip()


def _checksum(data):
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def ping(namespace, ip, attempts=5, timeout=1.0):
    """True when `ip` answers an ICMP echo sent from inside `namespace` (this machine has no
    `ping`; a raw socket is root's anyway)."""
    sock = netns.socket_in_netns(namespace, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    try:
        for seq in range(attempts):
            header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
            payload = b"labcloud-routed."  # an even length: _checksum sums 16-bit words
            sock.sendto(struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, seq) + payload, (ip, 0))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not select.select([sock], [], [], max(0.0, deadline - time.monotonic()))[0]:
                    break
                packet, (source, _port) = sock.recvfrom(2048)
                icmp = packet[(packet[0] & 0x0F) * 4:]
                kind, _code, _sum, got_id, _seq = struct.unpack("!BBHHH", icmp[:8])
                if source == ip and kind == 0 and got_id == ident:
                    return True
        return False
    finally:
        sock.close()


def capture(namespace, dev):
    """An AF_PACKET socket on `dev` inside `namespace`: every frame it sees queues up until read."""
    sock = netns.socket_in_netns(namespace, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((dev, 0))
    return sock


def frames(sock):
    """The frames queued so far, as (destination MAC, source MAC, ethertype, frame)."""
    seen = []
    while select.select([sock], [], [], 0.2)[0]:
        frame = sock.recv(65535)
        dst, src = (":".join(f"{b:02x}" for b in frame[i:i + 6]) for i in (0, 6))
        seen.append((dst, src, struct.unpack("!H", frame[12:14])[0], frame))
    return seen


def test_router_and_guest_reach_each_other_and_only_the_host_mac_is_on_the_uplink(
        agent, qemu_host, uplink, guest):
    with ServiceRpcProxy("hostagent_rt1", agent) as host:
        made = host.ensure_routed_network(SUBNET)
        again = host.ensure_routed_network(SUBNET)   # at-least-once delivery: by name, nothing new
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
    host_mac, router_mac = mac_of(qemu_host.netns, "uplink0"), mac_of(uplink, "up0")
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
    guest_ip = socket.inet_aton(GUEST_IP)
    carrying_guest = [f for f in seen if f[2] == 0x0800 and guest_ip in (f[3][26:30], f[3][30:34])]
    assert carrying_guest, "the capture saw none of the guest's packets"
    assert {src for _dst, src, _t, _f in seen} <= {host_mac, router_mac}
    assert {dst for dst, _src, _t, _f in seen} <= {host_mac, router_mac, "ff:ff:ff:ff:ff:ff"}
    assert all(GUEST_MAC.replace(":", "") not in frame.hex() for *_, frame in seen)
    # The guest's packets cross the uplink in frames of the host's MAC only.
    assert {(src, dst) for dst, src, _t, _f in carrying_guest} <= {(host_mac, router_mac), (router_mac, host_mac)}

    neighbours = netns.run(uplink, ["ip", "neigh", "show", "dev", "up0"]).stdout
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
    and start puts them back from the domain's own definition; destroy removes them."""
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
        finally:
            gone = host.destroy_domain({"instance_id": instance_id})
    assert gone["deleted"]
    conn = qemu_host.open()
    try:
        assert dhcp.dhcp_hosts(conn, subnet["name"]) == []
    finally:
        conn.close()
    assert ip not in neighbours_on(qemu_host.netns, bridge)
