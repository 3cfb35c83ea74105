"""Bandwidth limits with plain tc on the real kernel: a veth pair between two network namespaces of
the test's own stands in for a guest's tap (the "host" end, where hostagent.bandwidth works) and the
guest's NIC (the other end), and a TCP transfer across it measures what the limits let through."""
import json
import os
import select
import socket
import time
import uuid

import pytest

from common import netns
from common.errors import HostOperationFailed
from hostagent import bandwidth

# No namespace marker is registered (pyproject.toml); like the other namespace tests this runs in
# the fast tier, skipped only where namespaces cannot be made.
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and tc need root")

TAP = "tapbwtest0"
HOST_IP, GUEST_IP = "10.251.7.1", "10.251.7.2"
INSTANCE = "5e0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
WARM_UP = 0.3  # s: TCP's slow start and the initial bucket (16 KiB at these rates) out of the way
WINDOW = 3.0  # s measured: a TCP loss episode (a 200 ms retransmit timeout) then costs at most ~7%


@pytest.fixture
def link():
    """(host namespace, guest namespace): the host end of the veth is TAP, the guest end eth0."""
    tag = uuid.uuid4().hex[:8]
    host, guest = f"lcbwtest-{tag}", f"lcbwtest-{tag}-g"
    try:
        netns.create(host)
        netns.create(guest)
        netns.run(host, ["ip", "link", "add", TAP, "type", "veth", "peer", "name", "eth0",
                         "netns", guest])
        netns.run(host, ["ip", "addr", "add", f"{HOST_IP}/30", "dev", TAP])
        netns.run(guest, ["ip", "addr", "add", f"{GUEST_IP}/30", "dev", "eth0"])
        netns.run(host, ["ip", "link", "set", TAP, "up"])
        netns.run(guest, ["ip", "link", "set", "eth0", "up"])
        yield host, guest
    finally:
        netns.delete(guest)
        netns.delete(host)


class Transfer:
    """A TCP stream from namespace `src` to `dst_ip` in namespace `dst`, pumped by the caller's
    thread with non-blocking sockets and select (works with and without eventlet's patching)."""
    _ports = iter(range(25100, 25200))

    def __init__(self, src, dst, dst_ip):
        listener = netns.socket_in_netns(dst)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        port = next(self._ports)
        listener.bind((dst_ip, port))
        listener.listen(1)
        self.sender = netns.connect_in_netns(src, (dst_ip, port))
        self.receiver, _ = listener.accept()
        listener.close()
        self.sender.setblocking(False)
        self.receiver.setblocking(False)
        self.chunk = b"x" * 65536

    def pump(self, seconds):
        """Keep the stream saturated for `seconds`; KiB/s received in that time."""
        received = 0
        start = time.monotonic()
        while (now := time.monotonic()) - start < seconds:
            readable, writable, _ = select.select([self.receiver], [self.sender], [], 0.05)
            if writable:
                try:
                    self.sender.send(self.chunk)
                except BlockingIOError:
                    pass
            if readable:
                try:
                    received += len(self.receiver.recv(1 << 20))
                except BlockingIOError:
                    pass
        return received / (now - start) / 1024

    def rate(self, warm_up=WARM_UP, window=WINDOW):
        self.pump(warm_up)
        return self.pump(window)

    def close(self):
        self.sender.close()
        self.receiver.close()


def into_guest(link):
    host, guest = link
    return Transfer(host, guest, GUEST_IP)


def out_of_guest(link):
    host, guest = link
    return Transfer(guest, host, HOST_IP)


def within(measured, target, tolerance=0.2):
    return abs(measured - target) <= tolerance * target


def ifbs(namespace):
    return [entry["ifname"] for entry in json.loads(
        netns.run(namespace, ["ip", "-j", "link", "show", "type", "ifb"]).stdout or "[]")]


def qdiscs(namespace, dev=None):
    argv = ["tc", "-j", "qdisc", "show"] + (["dev", dev] if dev else [])
    return json.loads(netns.run(namespace, argv).stdout or "[]")


def test_limits_hold_in_each_direction_change_live_and_zero_removes_them(link):
    host, _ = link
    assert bandwidth.read(host, TAP, INSTANCE) == (0, 0)
    bandwidth.apply(host, TAP, INSTANCE, 512, 1024)
    assert bandwidth.read(host, TAP, INSTANCE) == (512, 1024)
    assert bandwidth.list_ifbs(host) == [bandwidth.ifb_name(INSTANCE)]

    inbound, outbound = into_guest(link), out_of_guest(link)
    try:
        rate_in = inbound.rate()
        rate_out = outbound.rate()
        print(f"limited: into the guest {rate_in:.0f} KiB/s (512), out of it {rate_out:.0f} KiB/s (1024)")
        assert within(rate_in, 512), rate_in
        assert within(rate_out, 1024), rate_out

        # Live: the same connection, the same qdiscs (tc replace changes them in place).
        handles = {q["handle"] for q in qdiscs(host)}
        bandwidth.apply(host, TAP, INSTANCE, 512, 2048)
        assert {q["handle"] for q in qdiscs(host)} == handles
        assert bandwidth.read(host, TAP, INSTANCE) == (512, 2048)
        raised = outbound.rate(warm_up=0.5)   # TCP grows into the new rate first
        print(f"changed live: out of the guest {raised:.0f} KiB/s (2048)")
        assert within(raised, 2048), raised

        # 0 removes a direction: its qdisc (and for outbound the redirect and the ifb) goes.
        bandwidth.apply(host, TAP, INSTANCE, 512, 0)
        assert bandwidth.read(host, TAP, INSTANCE) == (512, 0)
        assert ifbs(host) == [] and not [q for q in qdiscs(host, TAP) if q["kind"] == "ingress"]
        free_out = outbound.rate(window=0.5)
        bandwidth.apply(host, TAP, INSTANCE, 0, 0)
        assert bandwidth.read(host, TAP, INSTANCE) == (0, 0)
        free_in = inbound.rate(window=0.5)
        print(f"unlimited: into the guest {free_in:.0f} KiB/s, out of it {free_out:.0f} KiB/s")
        assert free_out > 5 * 2048 and free_in > 5 * 512, (free_in, free_out)
    finally:
        inbound.close()
        outbound.close()
    assert [q["kind"] for q in qdiscs(host, TAP)] == ["noqueue"]  # the veth's default again


def test_apply_twice_is_a_no_op(link, monkeypatch):
    host, _ = link
    bandwidth.apply(host, TAP, INSTANCE, 512, 1024)
    before = (qdiscs(host), json.loads(netns.run(host, ["ip", "-j", "link", "show"]).stdout))

    commands = []
    real_run = bandwidth._run

    def recording(namespace, argv, ok_errors=()):
        commands.append(argv)
        return real_run(namespace, argv, ok_errors)
    monkeypatch.setattr(bandwidth, "_run", recording)
    bandwidth.apply(host, TAP, INSTANCE, 512, 1024)

    assert commands and all("show" in argv for argv in commands), commands  # it only looked
    assert (qdiscs(host), json.loads(netns.run(host, ["ip", "-j", "link", "show"]).stdout)) == before


def test_one_direction_only(link):
    host, _ = link
    bandwidth.apply(host, TAP, INSTANCE, 0, 300)
    assert bandwidth.read(host, TAP, INSTANCE) == (0, 300)
    assert not [q for q in qdiscs(host, TAP) if q["kind"] == "tbf"]
    bandwidth.apply(host, TAP, INSTANCE, 700, 0)
    assert bandwidth.read(host, TAP, INSTANCE) == (700, 0)
    assert ifbs(host) == []


def test_clear_leaves_nothing_behind_and_is_idempotent(link):
    host, guest = link
    other = "0f1e2d3c-4b5a-4968-8776-655443322110"
    bandwidth.apply(host, TAP, INSTANCE, 512, 1024)
    netns.run(host, ["ip", "link", "add", bandwidth.ifb_name(other), "type", "ifb"])  # a leftover
    netns.run(host, ["ip", "link", "add", "ifbunrelated", "type", "ifb"])  # not an instance's
    assert bandwidth.list_ifbs(host) == sorted([bandwidth.ifb_name(INSTANCE), bandwidth.ifb_name(other)])

    bandwidth.clear(host, INSTANCE, TAP)
    assert sorted(ifbs(host)) == sorted([bandwidth.ifb_name(other), "ifbunrelated"])
    assert [(q["dev"], q["kind"]) for q in qdiscs(host) if q["dev"] == TAP] == [(TAP, "noqueue")]
    assert bandwidth.read(host, TAP, INSTANCE) == (0, 0)
    bandwidth.clear(host, INSTANCE, TAP)  # again: nothing to do, no error

    # The leftover of a guest whose tap is gone (reconcile): only the ifb name is known.
    bandwidth.clear(host, other)
    bandwidth.clear(host, other, tap="tapgone0")
    assert ifbs(host) == ["ifbunrelated"] and bandwidth.list_ifbs(host) == []
    assert not [q for q in qdiscs(host) if q["kind"] in ("tbf", "ingress")]


def test_ifb_names_and_errors(link):
    host, _ = link
    name = bandwidth.ifb_name(INSTANCE)
    assert name == "lcb5e0c1a2b3c4d" and len(name) <= 15
    assert bandwidth.ifb_name(INSTANCE.upper()) == name and bandwidth.ifb_name(uuid.UUID(INSTANCE)) == name
    assert bandwidth.instance_hex_of(name) == "5e0c1a2b3c4d"
    assert INSTANCE.replace("-", "").startswith(bandwidth.instance_hex_of(name))
    assert bandwidth.instance_hex_of("ifb0") is None and bandwidth.instance_hex_of("lcbnothexatall") is None

    with pytest.raises(HostOperationFailed) as failed:
        bandwidth.apply(host, "tapgone0", INSTANCE, 512, 512)
    assert "Cannot find device" in str(failed.value)
    assert ifbs(host) == []  # nothing made before the missing tap was noticed
    with pytest.raises(ValueError):
        bandwidth.apply(host, TAP, INSTANCE, -1, 0)
