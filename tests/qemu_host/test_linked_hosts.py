"""Two hosts of one data dir, linked (labcloud/host_link.py): a migration network between their
namespaces, their guest bridges one L2 segment, and metadata ARP and DHCP kept on each host."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from common import netns
from hostagent.dhcp import add_dhcp_host, remove_dhcp_host
from labcloud import host_link
from labcloud.qemu_host import METADATA_IP, LocalQemuHost, remove_link
from labcloud.stack import Stack

from .frames import GuestPort, mac_of, parse_arp
from .helpers import alive, destroy_quietly, host_pids, ip_addresses, tiny_domain_xml, wait_for

pytestmark = pytest.mark.realguest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def hosts(data_dir):
    first = LocalQemuHost(data_dir, "host1", index=0).start()
    try:
        second = LocalQemuHost(data_dir, "host2", index=1).start()
    except BaseException:
        first.stop()
        raise
    yield first, second
    second.stop()
    first.stop()


def our_namespaces(host):
    return sorted(name for name in os.listdir(netns.NETNS_DIR)
                  if name.startswith(host.netns_prefix))


def exchange(listen_ns, listen_ip, connect_ns):
    """A TCP connection from a socket of connect_ns to a listener of listen_ns on listen_ip."""
    listener = netns.socket_in_netns(listen_ns)
    try:
        listener.bind((listen_ip, 0))
        listener.listen(1)
        client = netns.connect_in_netns(connect_ns, (listen_ip, listener.getsockname()[1]),
                                        timeout=5)
        listener.settimeout(5)
        server, _ = listener.accept()
        with client, server:
            client.sendall(b"over the link")
            return server.recv(64)
    finally:
        listener.close()


def segment_drops(host):
    """Frames the host's segment filters dropped, both ways (leaving: the host end; entering: the
    link end's egress)."""
    return (host_link.dropped(host.netns, host_link.HOST_SEGMENT_IF)
            + host_link.dropped(host.link_netns, host_link.link_ends(host.index)[1]))


def test_addresses_and_router(hosts):
    first, second = hosts
    assert netns.exists(first.link_netns) and first.link_netns == second.link_netns
    assert ip_addresses(first, "lcbr0") == {"10.99.0.1/22", f"{METADATA_IP}/32"}
    assert ip_addresses(second, "lcbr0") == {"10.99.3.254/22", f"{METADATA_IP}/32"}
    assert (first.migration_address, second.migration_address) == ("198.18.0.1", "198.18.0.2")
    assert ip_addresses(second, "lcmig") == {"198.18.0.2/24"}
    conn = second.open()
    try:
        root = ET.fromstring(conn.networkLookupByName("labcloud").XMLDesc(0))
    finally:
        conn.close()
    # The dynamic range ends below the top 8 addresses, which are the hosts' bridge addresses.
    assert root.find("ip/dhcp/range").get("end") == "10.99.3.246"
    # What dnsmasq was told (libvirt keeps the option in its own namespace).
    with open(os.path.join(second.dirs["lib"], "dnsmasq", "labcloud.conf")) as f:
        lines = f.read().splitlines()
    assert "dhcp-option=option:router,10.99.0.1" in lines
    assert ("dhcp-option=option:classless-static-route,169.254.169.254/32,0.0.0.0,"
            "0.0.0.0/0,10.99.0.1") in lines


def test_migration_addresses_reach_each_other(hosts):
    first, second = hosts
    assert exchange(second.netns, second.migration_address, first.netns) == b"over the link"
    assert exchange(first.netns, first.migration_address, second.netns) == b"over the link"


def test_guest_bridges_are_one_segment(hosts):
    first, second = hosts
    assert exchange(second.netns, "10.99.3.254", first.netns) == b"over the link"
    assert exchange(first.netns, "10.99.0.1", second.netns) == b"over the link"


def test_each_guest_finds_only_its_own_hosts_metadata_server(hosts):
    first, second = hosts
    first_mac, second_mac = mac_of(first.netns, "lcbr0"), mac_of(second.netns, "lcbr0")
    before = segment_drops(second)
    with GuestPort(second) as guest:
        # The same request crosses for the other host's bridge address: the segment carries ARP,
        # so the single answer for the metadata address is the filter's doing.
        assert guest.who_answers("10.99.0.1") == {first_mac}
        assert guest.who_answers(METADATA_IP) == {second_mac}
    assert segment_drops(second) > before
    with GuestPort(first) as guest:
        assert guest.who_answers("10.99.3.254") == {second_mac}
        assert guest.who_answers(METADATA_IP) == {first_mac}


def test_arp_sent_from_the_metadata_address_stays_on_its_host(hosts):
    """A host answering a guest from 169.254.169.254 asks ARP for the guest with that sender
    address; across the segment it would repoint every other guest's entry for the metadata
    address to this host's MAC."""
    first, second = hosts
    with GuestPort(second) as guest:
        for source, target in (("10.99.0.1", "10.99.2.201"), (METADATA_IP, "10.99.2.202")):
            sender = netns.socket_in_netns(first.netns, socket.AF_INET, socket.SOCK_DGRAM)
            with sender:
                sender.bind((source, 0))
                sender.sendto(b"x", (target, 9))  # nobody has the target: host1 asks ARP
                seen = {arp["sender_ip"] for arp in map(parse_arp, guest.frames(1.0))
                        if arp and arp["target_ip"] == target}
            assert seen == ({"10.99.0.1"} if source == "10.99.0.1" else set()), (source, seen)


def test_dhcp_is_answered_only_by_the_guests_own_host(hosts):
    """Both hosts know the stand-in guest's MAC (with different addresses), so both dnsmasqs would
    answer at once if its DISCOVER crossed the segment."""
    first, second = hosts
    conns = [host.open() for host in hosts]
    try:
        with GuestPort(second) as guest:
            for conn, ip in zip(conns, ("10.99.1.51", "10.99.1.50")):
                add_dhcp_host(conn, guest.mac, ip, "standin")
            before = segment_drops(second)
            offers = guest.dhcp_offers()
            assert [(o["server_id"], o["yiaddr"], o["router"]) for o in offers] == [
                ("10.99.3.254", "10.99.1.50", "10.99.0.1")]
            # The metadata address on the guest's link, whatever the image routes via the gateway.
            assert offers[0]["routes"] == [(f"{METADATA_IP}/32", "0.0.0.0"),
                                           ("0.0.0.0/0", "10.99.0.1")]
            assert segment_drops(second) > before
            for conn in conns:
                remove_dhcp_host(conn, guest.mac)
        with GuestPort(first) as guest:
            for conn, ip in zip(conns, ("10.99.1.51", "10.99.1.50")):
                add_dhcp_host(conn, guest.mac, ip, "standin")
            offers = guest.dhcp_offers()
            assert [(o["server_id"], o["yiaddr"], o["router"]) for o in offers] == [
                ("10.99.0.1", "10.99.1.51", "10.99.0.1")]
            for conn in conns:
                remove_dhcp_host(conn, guest.mac)
    finally:
        for conn in conns:
            conn.close()


def test_guest_on_the_second_host_gets_its_lease_there(hosts):
    first, second = hosts
    mac = "52:54:00:20:00:05"
    conns = [host.open() for host in hosts]
    domain = None
    try:
        add_dhcp_host(conns[0], mac, "10.99.1.61", "tiny-elsewhere")
        add_dhcp_host(conns[1], mac, "10.99.1.60", "tiny2")
        domain = conns[1].createXML(tiny_domain_xml("tiny2", mac), 0)
        network = conns[1].networkLookupByName("labcloud")
        lease = wait_for(lambda: [l for l in network.DHCPLeases() if l["mac"] == mac], timeout=25)
        assert lease and lease[0]["ipaddr"] == "10.99.1.60"
        assert conns[0].networkLookupByName("labcloud").DHCPLeases() == []
    finally:
        if domain is not None:
            destroy_quietly(domain)
        for conn in conns:
            remove_dhcp_host(conn, mac)
            conn.close()


LAUNCHER = """
import sys, time
from labcloud.qemu_host import LocalQemuHost
for index, name in enumerate(("host1", "host2")):
    LocalQemuHost(sys.argv[1], name, index=index).start()
print("ready", flush=True)
time.sleep(600)
"""


def killed_launcher(data_dir):
    """Start two hosts in a process that is then killed with -9: it stops nothing."""
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, data_dir], stdout=subprocess.PIPE,
                            cwd=REPO_ROOT, env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    try:
        assert proc.stdout.readline().strip() == b"ready"
    finally:
        proc.kill()
        proc.wait(5)
    return [LocalQemuHost(data_dir, name) for name in ("host1", "host2")]


def own_data_dir(hosts, tmp_path):
    """A data dir of its own (so its link namespace can go), with the QEMU probe of the module's."""
    cache = os.path.join("cache", "qemu", "capabilities")
    shutil.copytree(os.path.join(hosts[0].base_dir, cache),
                    os.path.join(str(tmp_path), "hosts", "host1", cache))
    return str(tmp_path)


def test_stop_leaves_nothing_and_a_killed_launcher_does_not_break_the_next_start(hosts, tmp_path):
    data_dir = own_data_dir(hosts, tmp_path)
    stale = killed_launcher(data_dir)
    left = [host_pids(host) for host in stale]
    assert all(alive(pids) for pids in left) and len(our_namespaces(stale[0])) == 3
    # The next launcher just starts its hosts: each first ends what the old one left of itself.
    pair = [LocalQemuHost(data_dir, "host1", index=0).start(),
            LocalQemuHost(data_dir, "host2", index=1).start()]
    try:
        assert not any(alive(pids) for pids in left)
        assert exchange(pair[1].netns, "10.99.3.254", pair[0].netns) == b"over the link"
        assert exchange(pair[1].netns, pair[1].migration_address, pair[0].netns)
        running = [host_pids(host) for host in pair]
    finally:
        for host in pair:
            host.stop()
    assert our_namespaces(pair[0]) == []  # the last host out took the link namespace along
    assert not any(alive(pids) for pids in running)

    # Stack's way after a killed launcher: every host of the data dir cleaned up, then the link.
    stale = killed_launcher(data_dir)
    left = [host_pids(host) for host in stale]
    for host in LocalQemuHost.all_in(data_dir):
        host.clean_up()
    remove_link(data_dir)
    assert our_namespaces(stale[0]) == [] and not any(alive(pids) for pids in left)


def test_stack_gives_host_agents_the_migration_settings_and_removes_the_link(hosts, tmp_path):
    data_dir = own_data_dir(hosts, tmp_path)
    stack = Stack(data_dir, hosts=2, hypervisor="qemu")
    # The hosts as Stack.start_qemu_hosts starts them (without building the image first).
    for index, name in enumerate(stack.hosts):
        stack.qemu_hosts[name] = LocalQemuHost(data_dir, name, index=index).start()
    try:
        env = stack._host_env("host2")
        assert env["MIGRATION_ADDRESS"] == "198.18.0.2"
        assert env["MIGRATION_URI"] == env["LIBVIRT_URI"] == stack.qemu_hosts["host2"].uri
        assert Stack(data_dir, hosts=1)._host_env("host1").get("MIGRATION_URI") is None
        prefix = stack.qemu_hosts["host1"].netns_prefix
    finally:
        stack.stop()
    assert sorted(n for n in os.listdir(netns.NETNS_DIR) if n.startswith(prefix)) == []
