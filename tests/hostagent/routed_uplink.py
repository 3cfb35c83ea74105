"""An upstream router in a namespace of a test's own, for routed subnets (issue 11): the provider's
router that routes a subnet to a host's uplink address, and ways to look at what crosses that link
(ICMP echo over a raw socket, frames over an AF_PACKET socket, neighbour entries)."""
import contextlib
import json
import os
import select
import socket
import struct
import time
import uuid

from common import netns

# The provider's link to the host (inside our namespaces only).
ROUTER_IP, HOST_UPLINK_IP = "192.0.2.1", "192.0.2.2"
ETH_P_ALL = 0x0003


@contextlib.contextmanager
def uplink_router(host_netns, routed_cidr):
    """The router namespace, linked to the host's namespace by a veth: `up0` (router) - `uplink0`
    (host). The router routes `routed_cidr` via the host's uplink address and knows nothing else."""
    router = f"lct-{uuid.uuid4().hex[:8]}"
    netns.create(router)
    try:
        netns.run(router, ["ip", "link", "add", "up0", "type", "veth", "peer", "name", "uplink0",
                           "netns", netns.netns_path(host_netns)])
        netns.run(router, ["ip", "addr", "add", f"{ROUTER_IP}/30", "dev", "up0"])
        netns.run(router, ["ip", "link", "set", "up0", "up"])
        netns.run(host_netns, ["ip", "addr", "add", f"{HOST_UPLINK_IP}/30", "dev", "uplink0"])
        netns.run(host_netns, ["ip", "link", "set", "uplink0", "up"])
        netns.run(router, ["ip", "route", "add", routed_cidr, "via", HOST_UPLINK_IP])
        yield router
    finally:
        netns.delete(router)   # takes the veth pair with it


def uplink_macs(host_netns, router):
    """(the host's uplink MAC, the router's)."""
    return mac_of(host_netns, "uplink0"), mac_of(router, "up0")


def router_neighbours(router):
    return netns.run(router, ["ip", "neigh", "show", "dev", "up0"]).stdout


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


def check_only_host_mac(seen, host_mac, router_mac, guest_ip, guest_mac):
    """Assert that the frames `seen` on the uplink carry the guest's packets (so the capture saw
    them) and only ever the host's and the router's MACs, never the guest's. Returns how many frames
    carried the guest's packets."""
    packed = socket.inet_aton(guest_ip)
    carrying_guest = [f for f in seen if f[2] == 0x0800 and packed in (f[3][26:30], f[3][30:34])]
    assert carrying_guest, "the capture saw none of the guest's packets"
    assert {src for _dst, src, _t, _f in seen} <= {host_mac, router_mac}
    # Besides the two ends: broadcast and multicast (the group bit of the first octet: the host's
    # and the router's own IPv6 neighbour discovery, 33:33:..., sent now and then on any link).
    unicast = {dst for dst, _src, _t, _f in seen if not int(dst.split(":")[0], 16) & 1}
    assert unicast <= {host_mac, router_mac}, [f for f in seen if f[0] in unicast - {host_mac, router_mac}]
    assert all(guest_mac.replace(":", "") not in frame.hex() for *_, frame in seen)
    assert {(src, dst) for dst, src, _t, _f in carrying_guest} <= {(host_mac, router_mac), (router_mac, host_mac)}
    return len(carrying_guest)
