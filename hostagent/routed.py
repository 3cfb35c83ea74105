"""Routed subnets on a host (issue 11): for hosts whose uplink accepts only the host's own MAC (a
provider that routes a whole subnet to the host's uplink address, as Hetzner does).

Each routed subnet of this host is a libvirt network of its own, `lcr-<subnet name>`, on a bridge
of its own (never joined to the shared `segment` of the bridged network): `<forward mode='route'/>`
(libvirt's route mode: no NAT; it adds iptables rules that let the subnet's traffic through), the
subnet's gateway address on the bridge, so the host is the guests' router, and dnsmasq serving
DHCP host entries exactly as on the bridged network (dhcp.py writes them to any network by name).
IPv4 forwarding is on in the host's namespace and proxy ARP off, so the uplink only ever carries
frames of the host's own MAC: the upstream router sends the subnet to the host's uplink address,
and neighbour resolution of the guests' addresses happens only on the routed bridge.

Functions taking `conn` only call libvirt and parse XML (run whole in a native thread by
HypervisorConnection.run); `enable_routing` runs `sysctl` inside the namespace.
"""
import hashlib
import ipaddress
import xml.etree.ElementTree as ET

import libvirt

from common import netns
from common.errors import Conflict

NETWORK_PREFIX = "lcr-"   # the network service names routed networks so (addresses.routed_network_name)
BRIDGE_PREFIX = "lcr"
DEFAULT_FORWARD_MODE = "route"


def is_routed_network(name):
    return bool(name) and name.startswith(NETWORK_PREFIX)


def bridge_name(network_name):
    """A bridge name of at most 15 characters (the kernel's limit) that a subnet name of up to 64
    does not fit: a digest of the network's name."""
    return BRIDGE_PREFIX + hashlib.sha1(network_name.encode()).hexdigest()[:8]


def network_xml(spec, forward_mode=DEFAULT_FORWARD_MODE, dhcp_hosts=()):
    """The libvirt network of a routed subnet: the host holds the gateway address on the bridge;
    DHCP gives out only the host entries labcloud adds (no dynamic range: the network service owns
    every address of the subnet)."""
    net = ipaddress.IPv4Network(spec["cidr"])
    root = ET.Element("network")
    ET.SubElement(root, "name").text = spec["name"]
    ET.SubElement(root, "forward", mode=forward_mode)
    # stp off: a new guest's port forwards at once (as on the bridged network).
    ET.SubElement(root, "bridge", name=bridge_name(spec["name"]), stp="off", delay="0")
    ip = ET.SubElement(root, "ip", address=spec["gateway"], netmask=str(net.netmask))
    dhcp = ET.SubElement(ip, "dhcp")
    for host in dhcp_hosts:
        ET.SubElement(dhcp, "host", {k: v for k, v in host.items() if v})
    if spec.get("dns_servers"):
        dns = ET.SubElement(root, "dns")
        for server in spec["dns_servers"]:
            ET.SubElement(dns, "forwarder", addr=server)
    return ET.tostring(root, encoding="unicode")


def _find(conn, name):
    # Listed rather than looked up: a failed lookup makes libvirt log an error.
    return next((n for n in conn.listAllNetworks() if n.name() == name), None)


def _shape(xml):
    """What a definition says that matters here (forward mode, bridge, gateway, netmask, DNS),
    to tell whether an existing network is the one wanted."""
    root = ET.fromstring(xml)
    forward, bridge, ip = root.find("forward"), root.find("bridge"), root.find("ip")
    return ((forward.get("mode") if forward is not None else None),
            (bridge.get("name") if bridge is not None else None),
            (ip.get("address"), ip.get("netmask")) if ip is not None else None,
            [f.get("addr") for f in root.findall("./dns/forwarder")])


def _dhcp_hosts(xml):
    return [{key: host.get(key) or "" for key in ("mac", "ip", "name")}
            for host in ET.fromstring(xml).findall("./ip/dhcp/host")]


def ensure_network(conn, spec, forward_mode=DEFAULT_FORWARD_MODE):
    """The routed network `spec` ({name, cidr, gateway, dns_servers}) defined, started and marked
    autostart (a restarted libvirtd brings it back). Idempotent: an existing network of that name
    and shape is only started if it is not running; one of another shape (the subnet changed) is
    redefined, keeping its DHCP host entries. Returns {name, bridge, forward_mode, active, created}."""
    wanted = network_xml(spec, forward_mode)
    network, created = _find(conn, spec["name"]), False
    if network is not None and _shape(network.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)) != _shape(wanted):
        kept = _dhcp_hosts(network.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE))
        if network.isActive():
            network.destroy()
        network.undefine()
        network = conn.networkDefineXML(network_xml(spec, forward_mode, kept))
        created = True
    elif network is None:
        network, created = conn.networkDefineXML(wanted), True
    if not network.isActive():
        network.create()
    if not network.autostart():
        network.setAutostart(1)
    return {"name": spec["name"], "bridge": network.bridgeName(), "forward_mode": forward_mode,
            "active": bool(network.isActive()), "created": created}


def start_network(conn, name):
    """An existing routed network running again (a start of its guest after the host restarted);
    its bridge name, or None when there is no such network."""
    network = _find(conn, name)
    if network is None:
        return None
    if not network.isActive():
        network.create()
    return network.bridgeName()


def remove_network(conn, name):
    """The routed network gone (its subnet was deleted). False when there was none; a network a
    domain's definition still names is kept (Conflict naming `network`)."""
    network = _find(conn, name)
    if network is None:
        return False
    users = sorted(d.name() for d in conn.listAllDomains(0) if _joins(d, name))
    if users:
        raise Conflict(f"network {name} is used by {', '.join(users)}", {"network": ["in use"]})
    if network.isActive():
        network.destroy()
    network.undefine()
    return True


def routed_networks(conn):
    """The names of this host's routed networks."""
    return sorted(n.name() for n in conn.listAllNetworks() if is_routed_network(n.name()))


def domain_network(conn, instance_id):
    """The libvirt network the domain's interface joins (its definition), or None when there is
    no such domain or it joins none."""
    try:
        domain = conn.lookupByUUIDString(instance_id)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise
    return _network_of(domain)


def _network_of(domain):
    source = ET.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).find(
        "./devices/interface[@type='network']/source")
    return None if source is None else source.get("network")


def _joins(domain, network_name):
    return _network_of(domain) == network_name


# The host routes for its guests: forwarding on; no proxy ARP anywhere, so the host never answers
# the upstream's ARP for a guest's address (the upstream routes the subnet to the host instead).
ROUTING_SYSCTLS = ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.proxy_arp=0", "net.ipv4.conf.default.proxy_arp=0")


def enable_routing(namespace, bridge):
    """IPv4 forwarding on and proxy ARP off in the host's namespace (its own /proc/sys/net).
    Idempotent."""
    settings = list(ROUTING_SYSCTLS) + [f"net.ipv4.conf.{bridge}.proxy_arp=0"]
    netns.run(namespace, ["sysctl", "-q", "-w"] + settings)
