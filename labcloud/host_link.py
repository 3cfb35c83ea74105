"""The link between the local hypervisor hosts of one data dir.

Each `LocalQemuHost` lives in its own network namespace with its own guest bridge. Live migration
needs a path between two hosts' QEMUs (each one's loopback is private), and a migrated guest keeps
its TCP sessions only if its peers still reach it at the same MAC and IP: one L2 segment for all
hosts' guest bridges. Both are provided by a *link namespace* per data dir holding two Linux
bridges, to which every host connects with two veth pairs:

    host netns                         link netns
    lcmig 198.18.0.<index+1>/24  <->   mig<index>  -- port of bridge `migration`
    lcbr0 -- port lcseg          <->   seg<index>  -- port of bridge `segment`

The host ends keep fixed names (one host per namespace); the link ends are named by host index, so
two hosts that claim the same index (and so the same addresses) fail to connect instead of
silently sharing them.

The segment carries everything between guests and bridges except what must stay per host: ARP
naming the metadata address 169.254.169.254 (each host serves its own guests' metadata on that
address) and DHCP (each host's dnsmasq knows only its own guests). Those frames are dropped on both
ends of the segment veth, i.e. leaving and entering every host. The kernel here has no `flower`
classifier and no `gact` (drop) action, so the drop is a qdisc: an HTB root whose unclassified
traffic goes out directly, unshaped, and a u32-classified class whose leaf is a `pfifo` of length 0,
which drops every packet it is given (and counts them: `tc -s qdisc`).
"""
import fcntl
import ipaddress
import json
import os
import time
from contextlib import contextmanager

from common import netns

HOST_MIGRATION_IF = "lcmig"
HOST_SEGMENT_IF = "lcseg"
MIGRATION_BRIDGE = "migration"  # inside the link namespace
SEGMENT_BRIDGE = "segment"
MIGRATION_NETWORK = ipaddress.ip_network("198.18.0.0/24")  # benchmarking range: no guest uses it
METADATA_IP = "169.254.169.254"
DROP_CLASS = "1:20"
DROP_QDISC = "20:"
DHCP_PORTS = (67, 68)  # server and client: requests and replies both stay on their host
# A just-deleted namespace's veths go away in the kernel's clean-up work, a moment later.
STALE_PEER_WAIT_S = 2.0
LOCK_POLL_S = 0.01


def migration_address(index):
    return str(MIGRATION_NETWORK[index + 1])


def link_ends(index):
    """Names of a host's two veth ends inside the link namespace (15 characters at most)."""
    return f"mig{index}", f"seg{index}"


@contextmanager
def locked(lock_path):
    """Held while the link namespace is created, joined or deleted: hosts of one data dir start
    and stop in parallel threads (Stack.stop) or processes, and the last one out deletes it.
    Polled, not a blocking flock: under eventlet those threads are green threads of one OS thread,
    and a blocking flock in one would stop the other that holds the lock from ever letting go."""
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    with open(lock_path, "a") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(LOCK_POLL_S)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure(link_ns):
    """The link namespace and its two bridges; whatever of them exists is kept (another host of the
    data dir created it, or a killed launcher left it, which is just as good)."""
    netns.create(link_ns)
    for bridge in (MIGRATION_BRIDGE, SEGMENT_BRIDGE):
        if netns.run(link_ns, ["ip", "link", "show", "dev", bridge], check=False).returncode != 0:
            # STP off and no forward delay: a newly connected host forwards at once.
            netns.run(link_ns, ["ip", "link", "add", bridge, "type", "bridge",
                                "stp_state", "0", "forward_delay", "0"])
        netns.run(link_ns, ["ip", "link", "set", bridge, "up"])


def connect(host_ns, link_ns, index, guest_bridge):
    """Join a running host (its guest bridge exists) to the link; returns its migration address."""
    mig_peer, seg_peer = link_ends(index)
    for peer in (mig_peer, seg_peer):
        _wait_until_free(link_ns, peer, host_ns)
    # Created from inside the host namespace, the peer moved straight into the link namespace.
    for host_end, peer in ((HOST_MIGRATION_IF, mig_peer), (HOST_SEGMENT_IF, seg_peer)):
        netns.run(host_ns, ["ip", "link", "add", host_end, "type", "veth",
                            "peer", "name", peer, "netns", link_ns])
        # The alias tells, in `ip -n LINK link`, which host an end belongs to.
        netns.run(link_ns, ["ip", "link", "set", peer, "alias", host_ns])
    address = migration_address(index)
    netns.run(host_ns, ["ip", "addr", "add", f"{address}/{MIGRATION_NETWORK.prefixlen}",
                        "dev", HOST_MIGRATION_IF])
    netns.run(host_ns, ["ip", "link", "set", HOST_SEGMENT_IF, "master", guest_bridge])
    # Filters before any port is up: not one DHCP or metadata ARP frame may cross.
    add_segment_filters(host_ns, HOST_SEGMENT_IF)
    add_segment_filters(link_ns, seg_peer)
    netns.run(link_ns, ["ip", "link", "set", mig_peer, "master", MIGRATION_BRIDGE, "up"])
    netns.run(link_ns, ["ip", "link", "set", seg_peer, "master", SEGMENT_BRIDGE, "up"])
    for host_end in (HOST_MIGRATION_IF, HOST_SEGMENT_IF):
        netns.run(host_ns, ["ip", "link", "set", host_end, "up"])
    return address


def _wait_until_free(link_ns, peer, host_ns):
    deadline = time.monotonic() + STALE_PEER_WAIT_S
    while netns.run(link_ns, ["ip", "link", "show", "dev", peer], check=False).returncode == 0:
        if time.monotonic() > deadline:
            owner = netns.run(link_ns, ["ip", "-o", "link", "show", "dev", peer]).stdout.strip()
            raise RuntimeError(f"{host_ns}: link end {peer} is in use by another host ({owner}): "
                               "two hosts of one data dir have the same index")
        time.sleep(0.05)


def add_segment_filters(namespace, device):
    """Drop, as `device` sends them, ARP frames whose target or sender is the metadata address
    and IPv4 UDP to the DHCP ports. The sender matters too: a host that answers a guest from
    169.254.169.254 asks ARP for the guest with that sender address, and every machine on the
    segment that knows 169.254.169.254 would update it to that host's MAC."""
    def tc(*args):
        netns.run(namespace, ["tc", *args])

    tc("qdisc", "add", "dev", device, "root", "handle", "1:", "htb", "direct_qlen", "1000")
    tc("class", "add", "dev", device, "parent", "1:", "classid", DROP_CLASS, "htb",
       "rate", "8kbit", "quantum", "1514")
    tc("qdisc", "add", "dev", device, "parent", DROP_CLASS, "handle", DROP_QDISC,
       "pfifo", "limit", "0")
    metadata_hex = ipaddress.ip_address(METADATA_IP).packed.hex()
    high, low = metadata_hex[:4], metadata_hex[4:]
    # Offsets into the ARP header (Ethernet/IPv4): sender IP at 14 (2-byte aligned), target at 24.
    matches = [("arp", ["match", "u32", f"0x{metadata_hex}", "0xffffffff", "at", "24"]),
               ("arp", ["match", "u16", f"0x{high}", "0xffff", "at", "14",
                        "match", "u16", f"0x{low}", "0xffff", "at", "16"])]
    # `ip dport` assumes a 20-byte IP header; DHCP clients and dnsmasq send no IP options.
    matches += [("ip", ["match", "ip", "protocol", "17", "0xff", "match", "ip", "dport", str(port),
                        "0xffff"]) for port in DHCP_PORTS]
    for pref, (protocol, match) in enumerate(matches, start=1):
        tc("filter", "add", "dev", device, "parent", "1:", "protocol", protocol, "prio", str(pref),
           "u32", *match, "flowid", DROP_CLASS)


def dropped(namespace, device):
    """Packets the segment filters on `device` dropped so far."""
    out = netns.run(namespace, ["tc", "-s", "-j", "qdisc", "show", "dev", device]).stdout
    return next(qdisc["drops"] for qdisc in json.loads(out) if qdisc["handle"] == DROP_QDISC)


def disconnect(host_ns):
    """Delete a host's veths now. Deleting the namespace would too, but the kernel does that a
    moment later, and the host's next start may want the same link ends back at once."""
    if netns.exists(host_ns):
        for host_end in (HOST_MIGRATION_IF, HOST_SEGMENT_IF):
            netns.run(host_ns, ["ip", "link", "del", host_end], check=False)


def remove_if_unused(link_ns, host_prefix):
    """Delete the link namespace once no host namespace (`host_prefix*`) of its data dir is left."""
    names = os.listdir(netns.NETNS_DIR) if os.path.isdir(netns.NETNS_DIR) else []
    if not any(name.startswith(host_prefix) and name != link_ns for name in names):
        netns.delete(link_ns)
