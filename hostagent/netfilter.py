"""A host's security-group filters and floating-IP NAT: one nftables table, `ip labcloud`, in the
host's network namespace, replaced whole and atomically from the rule set the network service
pushes (services/network/host_rules.py), so applying is idempotent and whatever no record owns is
gone after the next push.

Why the `ip` family: guests talk over the host's bridge, and this kernel has no connection
tracking in the `bridge` family (CONFIG_NF_CONNTRACK_BRIDGE is off), so stateful rules ("replies
pass") cannot be written there. With `net.bridge.bridge-nf-call-iptables=1` (br_netfilter, built
in) bridged IPv4 traffic goes through the `ip` family's hooks with conntrack, so:
- `forward` sees guest-to-guest traffic on the bridge (and across the hosts' shared segment) and
  routed traffic (a floating IP's, from an uplink): each guest's egress rules (`out_N`, which
  return when allowed) then the destination guest's ingress rules (`in_N`, accept or drop);
- `output` sees what the host itself sends: only what was DNATed (to a floating IP from inside the
  host) goes through the guest's ingress rules. The host's own services (SSH endpoints, metadata,
  DHCP, readiness probes) reach the guests whatever the groups say: they are the management plane.
Floating IPs: DNAT in `prerouting` and `output`, SNAT of what the guest sends out of its subnet in
`postrouting`, and a local route for the address (marked with ROUTE_PROTO, so the agent finds its
own routes again) so that the host's own sockets can reach it.

Guests are matched by their IPv4 address; a guest that forges another source address is not
stopped here (no bridge-port matching in the `ip` family), which the docs say."""
import functools
import ipaddress
import json

from eventlet import semaphore
from nameko.extensions import DependencyProvider

from common import netns

TABLE = "labcloud"
ROUTE_PROTO = "77"   # an unassigned routing protocol number marks the floating IPs' local routes
SYSCTLS = {"net.bridge.bridge-nf-call-iptables": "1"}


def _peers(peers):
    return "{ " + ", ".join(valid_peer(p) for p in peers) + " }"


def _match(rule, peer_field):
    """The nft match of one rule (None when it can match nothing: a group with no members)."""
    if not rule["peers"]:
        return None
    parts = [f"{peer_field} {_peers(rule['peers'])}"]
    protocol = rule["protocol"]
    if protocol in ("tcp", "udp"):
        low, high = rule["port_min"], rule["port_max"]
        ports = str(low) if low == high else f"{low}-{high}"
        parts.append(f"{protocol} dport {ports}")
    elif protocol == "icmp":
        parts.append("meta l4proto icmp")
    return " ".join(parts)


def render(ruleset):
    """The nft script that replaces the table with `ruleset` ({"ports": [...], "floating": [...]},
    hostagent/schemas.py's NetworkRulesRequest). Ports are numbered in the order given."""
    lines = [f"table ip {TABLE}", f"delete table ip {TABLE}"]
    ports, floating = ruleset.get("ports") or [], ruleset.get("floating") or []
    if not ports and not floating:
        return "\n".join(lines) + "\n"
    body = []
    forward_out, forward_in, output = [], [], []
    for n, port in enumerate(ports):
        ip = port["ip"]
        forward_out.append(f"ip saddr {ip} jump out_{n}")
        forward_in.append(f"ip daddr {ip} jump in_{n}")
        output.append(f"ct status dnat ip daddr {ip} jump in_{n}")
        allowed_in = [m for m in (_match(r, "ip saddr") for r in port["ingress"]) if m]
        allowed_out = [m for m in (_match(r, "ip daddr") for r in port["egress"]) if m]
        body.append(_chain(f"in_{n}", None, ["ct state established,related accept", "ct state invalid drop"]
                           + [f"{m} accept" for m in allowed_in] + ["drop"]))
        body.append(_chain(f"out_{n}", None, ["ct state established,related return"]
                           + [f"{m} return" for m in allowed_out] + ["drop"]))
    chains = [
        _chain("forward", "type filter hook forward priority filter; policy accept;", forward_out + forward_in),
        _chain("output", "type filter hook output priority filter; policy accept;", output),
    ]
    if floating:
        dnat = [f"ip daddr {f['floating_ip']} dnat to {f['fixed_ip']}" for f in floating]
        snat = [f"ip saddr {f['fixed_ip']} ip daddr != {f['subnet']} snat to {f['floating_ip']}" for f in floating]
        chains += [_chain("nat_prerouting", "type nat hook prerouting priority dstnat; policy accept;", dnat),
                   _chain("nat_output", "type nat hook output priority -100; policy accept;", dnat),
                   _chain("nat_postrouting", "type nat hook postrouting priority srcnat; policy accept;", snat)]
    lines.append(f"table ip {TABLE} {{")
    lines += chains + body
    lines.append("}")
    return "\n".join(lines) + "\n"


def _chain(name, header, rules):
    inner = ([f"    {header}"] if header else []) + [f"    {rule}" for rule in rules]
    return "  chain " + name + " {\n" + "\n".join(inner) + "\n  }"


def apply(namespace, ruleset):
    """Make the namespace's table and floating-IP routes what `ruleset` says (atomic for the table:
    one nft transaction deletes and recreates it)."""
    for key, value in SYSCTLS.items():
        netns.run(namespace, ["sysctl", "-qw", f"{key}={value}"])
    netns.run(namespace, ["nft", "-f", "-"], input=render(ruleset))
    wanted = {f["floating_ip"] for f in ruleset.get("floating") or []}
    if wanted:
        netns.run(namespace, ["ip", "link", "set", "lo", "up"])   # local routes need it
    have = set(local_routes(namespace))
    # One `ip -batch` for all the route changes (a subprocess per address cost ~10 ms each).
    batch = [f"route replace local {ip}/32 dev lo proto {ROUTE_PROTO}" for ip in sorted(wanted - have)]
    batch += [f"route del local {ip}/32 dev lo table local" for ip in sorted(have - wanted)]
    if batch:
        netns.run(namespace, ["ip", "-force", "-batch", "-"], input="\n".join(batch) + "\n")


def local_routes(namespace):
    """The floating IPs this agent routes locally (its marked routes)."""
    result = netns.run(namespace, ["ip", "-j", "route", "show", "table", "local", "proto", ROUTE_PROTO], check=False)
    if result.returncode != 0:   # "FIB table does not exist": a namespace with no local address yet
        return []
    return [route["dst"].split("/")[0] for route in json.loads(result.stdout or "[]")]


def table(namespace):
    """The table as the kernel has it (JSON), or None when there is none."""
    result = netns.run(namespace, ["nft", "-j", "list", "table", "ip", TABLE], check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


@functools.lru_cache(maxsize=65536)   # a course's members recur in every member's rules
def valid_peer(value):
    """A peer CIDR as nft writes it (a host /32 as its address)."""
    net = ipaddress.IPv4Network(value, strict=False)
    return str(net.network_address) if net.prefixlen == 32 else str(net)


class HostFirewall(DependencyProvider):
    """The host's table: applied inside HOST_NETNS, or only remembered without one (test:///default,
    where there is no guest network), so what a host was told is always readable."""

    def setup(self):
        self.firewall = Firewall(self.container.config.get("HOST_NETNS") or "")

    def get_dependency(self, worker_ctx):
        return self.firewall


class Firewall:
    def __init__(self, namespace):
        self.namespace = namespace
        self.last = {"ports": [], "floating": []}
        self._lock = semaphore.Semaphore()   # pushes from two workers apply one after the other

    def apply(self, ruleset):
        with self._lock:
            if self.namespace:
                apply(self.namespace, ruleset)
            self.last = ruleset

    def current(self):
        if not self.namespace:
            return {**self.last, "applied": False, "local_routes": []}
        return {**self.last, "applied": True, "local_routes": local_routes(self.namespace)}
