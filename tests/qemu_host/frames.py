"""A stand-in guest for the link tests: a veth port on a host's guest bridge that sends and
receives raw Ethernet frames (ARP, DHCP) through an AF_PACKET socket opened in the host's
namespace. Cheaper than booting a guest, and it sees every frame the bridge gives a guest port."""
import ipaddress
import json
import socket
import struct
import time

from common import netns

ETH_P_ALL, ETH_P_ARP, ETH_P_IP = 0x0003, 0x0806, 0x0800
BROADCAST = b"\xff" * 6
DHCP_MAGIC = b"\x63\x82\x53\x63"


def mac_of(namespace, device):
    out = netns.run(namespace, ["ip", "-j", "link", "show", "dev", device]).stdout
    return json.loads(out)[0]["address"]


def _mac_bytes(mac):
    return bytes.fromhex(mac.replace(":", ""))


def _mac_text(raw):
    return ":".join(f"{b:02x}" for b in raw)


class GuestPort:
    """`ip link add NAME type veth peer name NAMEb` in the host namespace, NAMEb on the bridge."""

    def __init__(self, host, name="lctest"):
        self.host, self.name = host, name
        ns = host.netns
        netns.run(ns, ["ip", "link", "add", name, "type", "veth", "peer", "name", name + "b"])
        netns.run(ns, ["ip", "link", "set", name + "b", "master", host.bridge, "up"])
        netns.run(ns, ["ip", "link", "set", name, "up"])
        self.mac = mac_of(ns, name)
        self.sock = netns.socket_in_netns(ns, socket.AF_PACKET, socket.SOCK_RAW,
                                          socket.htons(ETH_P_ALL))
        self.sock.bind((name, 0))

    def close(self):
        self.sock.close()
        netns.run(self.host.netns, ["ip", "link", "del", self.name], check=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, frame):
        self.sock.send(frame)

    def frames(self, seconds):
        """Every frame that arrives on the port within `seconds`."""
        found, deadline = [], time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                found.append(self.sock.recv(2048))
            except (socket.timeout, TimeoutError):
                break
        return found

    # ----- ARP -----
    def arp_request(self, sender_ip, target_ip):
        arp = struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, 1, _mac_bytes(self.mac),
                          ipaddress.ip_address(sender_ip).packed, b"\0" * 6,
                          ipaddress.ip_address(target_ip).packed)
        self.send(BROADCAST + _mac_bytes(self.mac) + struct.pack("!H", ETH_P_ARP) + arp)

    def who_answers(self, target_ip, sender_ip="10.99.2.200", seconds=1.0):
        """MACs that answer this port's ARP request for target_ip."""
        self.frames(0.05)  # whatever arrived before
        self.arp_request(sender_ip, target_ip)
        return {arp["sender_mac"] for arp in map(parse_arp, self.frames(seconds))
                if arp and arp["op"] == 2 and arp["sender_ip"] == target_ip}

    # ----- DHCP -----
    def dhcp_offers(self, xid=0x1ab5c0de, seconds=1.5):
        """Broadcast a DHCPDISCOVER; the offers that come back, parsed."""
        self.frames(0.05)
        self.send(dhcp_discover(_mac_bytes(self.mac), xid))
        offers = [parse_dhcp_reply(frame) for frame in self.frames(seconds)]
        return [offer for offer in offers if offer and offer["xid"] == xid]


def parse_arp(frame):
    if len(frame) < 42 or struct.unpack("!H", frame[12:14])[0] != ETH_P_ARP:
        return None
    _, _, _, _, op, sha, spa, _, tpa = struct.unpack("!HHBBH6s4s6s4s", frame[14:42])
    return {"op": op, "sender_mac": _mac_text(sha), "sender_ip": str(ipaddress.ip_address(spa)),
            "target_ip": str(ipaddress.ip_address(tpa))}


def _ip_checksum(header):
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def dhcp_discover(mac, xid):
    # Broadcast flag set: the server answers to the Ethernet broadcast address.
    bootp = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000, b"\0" * 4,
                        b"\0" * 4, b"\0" * 4, b"\0" * 4, mac, b"", b"")
    # Asks for: subnet mask, router, DNS server, classless static routes.
    options = DHCP_MAGIC + bytes([53, 1, 1, 55, 4, 1, 3, 6, 121, 255])
    payload = (bootp + options).ljust(300, b"\0")
    udp = struct.pack("!HHHH", 68, 67, 8 + len(payload), 0) + payload  # UDP checksum 0: none
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         b"\0" * 4, b"\xff" * 4)
    header = header[:10] + struct.pack("!H", _ip_checksum(header)) + header[12:]
    return BROADCAST + mac + struct.pack("!H", ETH_P_IP) + header + udp


def parse_dhcp_reply(frame):
    if len(frame) < 14 + 20 + 8 + 240 or struct.unpack("!H", frame[12:14])[0] != ETH_P_IP:
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[9] != 17:
        return None
    sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
    bootp = ip[ihl + 8:]
    if (sport, dport) != (67, 68) or bootp[0] != 2 or bootp[236:240] != DHCP_MAGIC:
        return None
    options, i = {}, 240
    while i < len(bootp) and bootp[i] != 255:
        if bootp[i] == 0:
            i += 1
            continue
        code, length = bootp[i], bootp[i + 1]
        options[code] = bootp[i + 2:i + 2 + length]
        i += 2 + length

    def address(code):
        return str(ipaddress.ip_address(options[code][:4])) if code in options else None

    return {"xid": struct.unpack("!I", bootp[4:8])[0],
            "routes": classless_routes(options.get(121, b"")),
            "yiaddr": str(ipaddress.ip_address(bootp[16:20])),
            "source_ip": str(ipaddress.ip_address(ip[12:16])),
            "type": options.get(53, b"\0")[0], "server_id": address(54), "router": address(3)}


def classless_routes(data):
    """DHCP option 121 (RFC 3442) as [(destination/prefix, router)]."""
    routes, i = [], 0
    while i < len(data):
        width = data[i]
        octets = (width + 7) // 8
        destination = ipaddress.ip_address(data[i + 1:i + 1 + octets].ljust(4, b"\0"))
        router = ipaddress.ip_address(data[i + 1 + octets:i + 5 + octets])
        routes.append((f"{destination}/{width}", str(router)))
        i += 5 + octets
    return routes
