"""DHCP host entries (MAC -> IP, hostname) on a host's isolated libvirt network.

Kept apart from the rest of the agent so anything holding a libvirt connection can use it. The
functions only call libvirt and parse XML (no logging, no eventlet), so the agent can run them whole
in a native thread. libvirt applies each update atomically, but add/remove here read then write:
the caller serialises updates to one network.

Both are idempotent. The network service owns the addresses, so an entry that holds the requested
MAC or IP for someone else is stale and is replaced.
"""
import re
import uuid
import xml.etree.ElementTree as ET

import libvirt

NETWORK_NAME = "labcloud"
# labcloud names each entry after its instance (names must be unique on a network; instance
# names need not be), so an entry can be found and cleaned up without the domain.
_ENTRY_NAME = re.compile(r"^i-([0-9a-f]{32})$")


def entry_name(instance_id):
    return f"i-{instance_id.replace('-', '')}"


def instance_id_of(name):
    """The instance an entry named `i-<uuid hex>` belongs to; None for entries not labcloud's."""
    match = _ENTRY_NAME.match(name or "")
    return str(uuid.UUID(match.group(1))) if match else None


def _update_flags(network):
    # live: dnsmasq learns the entry now; config: it survives a restart of the network.
    flags = 0
    if network.isActive():
        flags |= libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE
    if network.isPersistent():
        flags |= libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG
    return flags


def _host_xml(entry):
    element = ET.Element("host", {k: v for k, v in entry.items() if v})
    return ET.tostring(element, encoding="unicode")


def dhcp_hosts(conn, network=NETWORK_NAME):
    """The network's DHCP host entries as dicts {mac, ip, name} (mac lower case)."""
    net = conn.networkLookupByName(network)
    root = ET.fromstring(net.XMLDesc(0))
    return [{"mac": (host.get("mac") or "").lower(), "ip": host.get("ip") or "",
             "name": host.get("name") or ""}
            for host in root.findall("./ip/dhcp/host")]


def _delete(net, entry):
    # A delete must name the entry exactly as stored (libvirt matches every given attribute).
    net.update(libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST,
               -1, _host_xml(entry), _update_flags(net))


def add_dhcp_host(conn, mac, ip, name, network=NETWORK_NAME):
    """Make `mac` get `ip` and hostname `name`. Returns False when it already did. `name` must be
    unique on the network (libvirt rejects a second entry with the same name)."""
    wanted = {"mac": mac.lower(), "ip": ip, "name": name}
    net = conn.networkLookupByName(network)
    existing = dhcp_hosts(conn, network)
    if wanted in existing:
        return False
    for entry in existing:
        if entry["mac"] == wanted["mac"] or entry["ip"] == ip:
            _delete(net, entry)
    net.update(libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
               libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, _host_xml(wanted), _update_flags(net))
    return True


def remove_dhcp_host(conn, mac, ip=None, name=None, network=NETWORK_NAME):
    """Remove the entry for `mac` (only if it also has `ip` / `name`, when given). Returns False
    when there was none."""
    net = conn.networkLookupByName(network)
    removed = False
    for entry in dhcp_hosts(conn, network):
        if entry["mac"] != mac.lower():
            continue
        if (ip is not None and entry["ip"] != ip) or (name is not None and entry["name"] != name):
            continue
        _delete(net, entry)
        removed = True
    return removed


def instance_entries(conn, network=NETWORK_NAME):
    """labcloud's entries: [{name, mac, ip, instance_id}]."""
    return [{**entry, "instance_id": instance_id_of(entry["name"])}
            for entry in dhcp_hosts(conn, network) if instance_id_of(entry["name"])]


def remove_instance_hosts(conn, instance_id, mac=None, ip=None, network=NETWORK_NAME):
    """Remove the instance's entry (found by its name) and, when `mac` is given, any entry for
    that MAC (and `ip`, when given). Returns (removed entries, entries left)."""
    net = conn.networkLookupByName(network)
    name = entry_name(instance_id)
    removed, left = [], []
    for entry in dhcp_hosts(conn, network):
        by_mac = mac is not None and entry["mac"] == mac.lower() and (ip is None or entry["ip"] == ip)
        if entry["name"] == name or by_mac:
            _delete(net, entry)
            removed.append(entry)
        else:
            left.append(entry)
    return removed, left
