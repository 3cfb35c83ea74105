"""Security-group filters and floating-IP NAT (hostagent/netfilter.py) in real namespaces: a host
namespace with a bridge and three stand-in guests, each in a namespace of its own behind a veth
on the bridge (as a tap is), with TCP servers on ports 22 and 80. The rule sets are what the network
service pushes; what passes and what does not is measured with real connections."""
import socket
import uuid

import pytest

from common import netns
from hostagent import netfilter
from tests.hostagent.netutil import connect_from, echo_server

SUBNET = "10.60.0.0/24"
HOST_IP = "10.60.0.1"
GUESTS = {"a1": "10.60.0.11", "b1": "10.60.0.12", "a2": "10.60.0.13"}   # courses A and B
FLOATING = "203.0.113.10"
ANY = ["0.0.0.0/0"]


def rule(protocol, port=None, peers=ANY):
    return {"protocol": protocol, "port_min": port, "port_max": port, "peers": peers}


def default_group(ip, extra_in=()):
    """A course's default group (SSH in from anywhere, everything out) plus `extra_in`."""
    return {"ip": ip, "ingress": [rule("tcp", 22), *extra_in], "egress": [rule("any")]}


@pytest.fixture(scope="module")
def lab():
    """{"host": namespace, "a1"/"b1"/"a2": namespace of that guest}, with servers on 22 and 80."""
    tag = uuid.uuid4().hex[:6]
    host = f"lcf-{tag}-h"
    names = {"host": host}
    netns.create(host)
    servers = []
    try:
        netns.run(host, ["ip", "link", "add", "lab0", "type", "bridge"])
        netns.run(host, ["ip", "link", "set", "lab0", "up"])
        netns.run(host, ["ip", "addr", "add", f"{HOST_IP}/24", "dev", "lab0"])
        for guest, ip in GUESTS.items():
            name = names[guest] = f"lcf-{tag}-{guest}"
            netns.create(name)
            port = f"v{tag}{guest}"
            netns.run(host, ["ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name])
            netns.run(host, ["ip", "link", "set", port, "master", "lab0", "up"])
            for argv in (["ip", "addr", "add", f"{ip}/24", "dev", "eth0"], ["ip", "link", "set", "eth0", "up"],
                         ["ip", "link", "set", "lo", "up"], ["ip", "route", "add", "default", "via", HOST_IP]):
                netns.run(name, argv)
            for service_port in (22, 80):
                servers.append(echo_server(name, (ip, service_port)))
        yield names
    finally:
        for thread, listener in servers:
            thread.kill()
            listener.close()
        for name in names.values():
            if netns.exists(name):
                netns.delete(name)


def reaches(lab, source, destination, port, timeout=1.0):
    """True when a connection from guest `source` (or "host") to `destination`:port gets an echo."""
    target = GUESTS.get(destination, destination)
    try:
        if source == "host":
            sock = netns.socket_in_netns(lab["host"], socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect((target, port))
        else:
            sock = connect_from(lab[source], GUESTS[source], (target, port), timeout=timeout)
    except OSError:
        return False
    try:
        sock.sendall(b"hi")
        return sock.recv(64) == b"echo:hi"
    except OSError:
        return False
    finally:
        sock.close()


@pytest.fixture
def ruleset(lab):
    """Apply a rule set to the host; everything is removed after the test."""
    def apply(ports, floating=()):
        wanted = {"ports": list(ports), "floating": list(floating)}
        netfilter.apply(lab["host"], wanted)
        return wanted
    yield apply
    netfilter.apply(lab["host"], {"ports": [], "floating": []})


def test_without_rules_everything_passes(lab):
    assert netfilter.table(lab["host"]) is None
    assert reaches(lab, "a1", "b1", 80) and reaches(lab, "b1", "a1", 80)


def test_two_courses_reach_each_other_only_where_a_rule_allows(lab, ruleset):
    web_from_a = rule("tcp", 80, peers=[f"{GUESTS['a1']}/32", f"{GUESTS['a2']}/32"])  # remote group A
    ruleset([default_group(GUESTS["a1"], [web_from_a]), default_group(GUESTS["b1"]),
             default_group(GUESTS["a2"], [web_from_a])])
    assert reaches(lab, "a1", "a2", 80) and reaches(lab, "a2", "a1", 80)   # course A's group rule
    assert not reaches(lab, "b1", "a1", 80) and not reaches(lab, "a1", "b1", 80)  # between courses: no
    assert reaches(lab, "b1", "a1", 22)                                   # the default group's SSH rule
    assert reaches(lab, "host", "b1", 80)       # the host's own traffic (management) is not filtered


def test_egress_rules_and_replies(lab, ruleset):
    only_ssh_out = {"ip": GUESTS["a1"], "ingress": [], "egress": [rule("tcp", 22, peers=[SUBNET])]}
    ruleset([only_ssh_out])
    assert reaches(lab, "a1", "b1", 22)          # allowed out, and its replies come back in
    assert not reaches(lab, "a1", "b1", 80)      # not allowed out
    assert not reaches(lab, "b1", "a1", 22)      # nothing allowed in


def test_a_rule_change_applies_live_and_keeps_established_connections(lab, ruleset):
    ruleset([default_group(GUESTS["a1"])])
    assert not reaches(lab, "b1", "a1", 80)
    ruleset([default_group(GUESTS["a1"], [rule("tcp", 80, peers=[f"{GUESTS['b1']}/32"])])])
    assert reaches(lab, "b1", "a1", 80)
    open_session = connect_from(lab["b1"], GUESTS["b1"], (GUESTS["a1"], 80), timeout=2)
    try:
        ruleset([default_group(GUESTS["a1"])])           # the rule goes again
        assert not reaches(lab, "b1", "a1", 80)
        open_session.sendall(b"still")                     # what was open goes on (conntrack)
        assert open_session.recv(64) == b"echo:still"
    finally:
        open_session.close()


def test_a_floating_ip_reaches_its_guest_through_its_groups(lab, ruleset):
    nat = {"floating_ip": FLOATING, "fixed_ip": GUESTS["a1"], "subnet": SUBNET}
    ruleset([default_group(GUESTS["a1"])], [nat])
    assert netfilter.local_routes(lab["host"]) == [FLOATING]
    assert reaches(lab, "host", FLOATING, 22)        # DNAT in the host's namespace
    assert not reaches(lab, "host", FLOATING, 80)    # and the guest's ingress rules apply to it
    ruleset([default_group(GUESTS["a1"])])           # disassociated
    assert not reaches(lab, "host", FLOATING, 22)
    assert netfilter.local_routes(lab["host"]) == []


def test_applying_twice_is_the_same_and_nothing_is_left_after_an_empty_push(lab, ruleset):
    nat = {"floating_ip": FLOATING, "fixed_ip": GUESTS["b1"], "subnet": SUBNET}
    ruleset([default_group(GUESTS["b1"])], [nat])
    first = netfilter.table(lab["host"])
    ruleset([default_group(GUESTS["b1"])], [nat])
    assert _without_handles(netfilter.table(lab["host"])) == _without_handles(first)
    netfilter.apply(lab["host"], {"ports": [], "floating": []})
    assert netfilter.table(lab["host"]) is None and netfilter.local_routes(lab["host"]) == []


def _without_handles(listing):
    """nft's JSON with the rule handles (which grow with each replace) left out."""
    if isinstance(listing, dict):
        return {k: _without_handles(v) for k, v in listing.items() if k != "handle"}
    if isinstance(listing, list):
        return [_without_handles(v) for v in listing]
    return listing
