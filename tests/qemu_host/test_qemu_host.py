"""LocalQemuHost: a private libvirtd in its own network namespace, an isolated network, real
domains."""
import os
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

import libvirt
import pytest

from hostagent.dhcp import add_dhcp_host, dhcp_hosts, remove_dhcp_host
from common import netns
from labcloud.processes import alive as _alive
from labcloud.qemu_host import METADATA_IP, LocalQemuHost

from .helpers import alive, destroy_quietly, host_pids, ip_addresses, network_names, \
    tiny_domain_xml, wait_for

pytestmark = pytest.mark.realguest


def test_private_daemon_answers_with_its_own_identity(host, conn):
    print(f"first host: {host.timings}")
    assert conn.getType() == "QEMU"
    assert host.socket_path.startswith(host.data_dir)
    assert host.uri == f"qemu+unix:///system?socket={host.socket_path}"
    caps = ET.fromstring(conn.getCapabilities())
    assert caps.findtext("./host/uuid") == host.host_uuid
    # The identity is generated once and kept.
    assert LocalQemuHost(host.data_dir, "host1").host_uuid == host.host_uuid


def test_isolated_network_with_bridge_and_metadata_address(host, conn):
    assert network_names(conn) == ["labcloud"]  # in particular no `default` network
    network = conn.networkLookupByName("labcloud")
    assert network.isActive() and not network.autostart()
    assert network.bridgeName() == "lcbr0" == host.bridge
    root = ET.fromstring(network.XMLDesc(0))
    # Isolated by the namespace itself: libvirt adds no firewall rules ('open': each DHCP entry
    # would otherwise reload them, ~0.2 s), and there is no link or route out of the namespace
    # but the two veths to the data dir's link namespace (migration network, shared segment).
    assert root.find("forward").get("mode") == "open"
    links = subprocess.run(netns.nsenter_argv(host.netns) + ["ip", "-o", "link"], capture_output=True,
                           text=True, check=True).stdout
    assert sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines()) == [
        "lcbr0", "lcmig", "lcseg", "lo"]
    routes = subprocess.run(netns.nsenter_argv(host.netns) + ["ip", "route"], capture_output=True,
                            text=True, check=True).stdout
    # No default route.
    assert sorted(line.split()[0] for line in routes.splitlines()) == ["10.99.0.0/22",
                                                                       "198.18.0.0/24"]
    assert root.find("ip").get("address") == "10.99.0.1"
    assert ip_addresses(host, "lcbr0") == {"10.99.0.1/22", f"{METADATA_IP}/32"}
    # Only inside the namespace: the machine's own namespace has no such bridge.
    assert subprocess.run(["ip", "link", "show", "lcbr0"], capture_output=True).returncode != 0
    networks_dir = os.path.join(host.dirs["etc"], "qemu", "networks")
    assert not os.path.exists(os.path.join(networks_dir, "default.xml"))


def test_domain_starts_fast_and_gets_its_dhcp_address(host, conn):
    mac, ip = "52:54:00:10:00:05", "10.99.0.5"
    assert add_dhcp_host(conn, mac, ip, "tiny1") is True
    started = time.monotonic()
    domain = conn.createXML(tiny_domain_xml("tiny1", mac), 0)
    create_s = time.monotonic() - started
    try:
        print(f"domain create: {create_s:.3f} s")
        assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        # ~0.3 s when idle; the bound leaves room for a busy 2-core machine and still catches the
        # ~45 s start of a daemon without `user = "root"` in qemu.conf.
        assert create_s < 2.0, "qemu.conf user/group root should make a start take ~0.3 s"
        network = conn.networkLookupByName("labcloud")
        # iPXE under TCG asks for its address a few seconds after power-on.
        lease = wait_for(lambda: [l for l in network.DHCPLeases() if l["mac"] == mac], timeout=25)
        assert lease and lease[0]["ipaddr"] == ip and lease[0]["hostname"] == "tiny1"
        print(f"DHCP lease after {time.monotonic() - started:.1f} s")
    finally:
        destroy_quietly(domain)
        remove_dhcp_host(conn, mac)
    assert conn.listAllDomains() == []


def test_dhcp_host_helpers_are_idempotent(conn):
    mac = "52:54:00:10:00:06"
    assert add_dhcp_host(conn, mac, "10.99.0.6", "vm6") is True
    assert add_dhcp_host(conn, mac.upper(), "10.99.0.6", "vm6") is False
    # The network service moved the instance: the entry follows.
    assert add_dhcp_host(conn, mac, "10.99.0.7", "vm6") is True
    # An address handed to another MAC replaces the stale entry that held it.
    assert add_dhcp_host(conn, "52:54:00:10:00:08", "10.99.0.7", "vm8") is True
    assert {(e["mac"], e["ip"]) for e in dhcp_hosts(conn)} == {("52:54:00:10:00:08", "10.99.0.7")}
    # Kept in the persistent definition too (flags live + config).
    inactive = conn.networkLookupByName("labcloud").XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)
    assert "52:54:00:10:00:08" in inactive
    assert remove_dhcp_host(conn, "52:54:00:10:00:08") is True
    assert remove_dhcp_host(conn, "52:54:00:10:00:08") is False
    assert dhcp_hosts(conn) == []


def test_two_hosts_from_one_data_dir_coexist(host, conn):
    second = LocalQemuHost(host.data_dir, "host2")
    assert second.netns != host.netns and second.socket_path != host.socket_path
    second.start()
    try:
        print(f"second host: {second.timings}")
        assert netns.exists(host.netns) and netns.exists(second.netns)
        other = second.open()
        try:
            assert other.getType() == "QEMU"
            uuid = ET.fromstring(other.getCapabilities()).findtext("./host/uuid")
            assert uuid == second.host_uuid
            assert second.host_uuid != host.host_uuid
            assert network_names(other) == ["labcloud"]
            # Same bridge name in different namespaces; the bridges form one segment, so host2's
            # has the top address of the subnet rather than the gateway.
            assert "10.99.3.254/22" in ip_addresses(second, "lcbr0")
        finally:
            other.close()
    finally:
        second.stop()
    assert not netns.exists(second.netns)
    assert conn.getType() == "QEMU"  # the first host is untouched
    assert netns.exists(host.link_netns)  # and still needs the link namespace


def test_stop_leaves_no_process_and_no_namespace(data_dir):
    host = LocalQemuHost(data_dir, "host3").start()
    conn = host.open()
    conn.createXML(tiny_domain_xml("tiny3", "52:54:00:10:00:09"), 0)
    conn.close()
    pids = host_pids(host)
    assert pids["libvirtd"] and pids["qemu"] and pids["dnsmasq"] and len(alive(pids)) >= 3
    started = time.monotonic()
    host.stop()
    print(f"stop with one domain: {time.monotonic() - started:.2f} s")
    assert alive(pids) == []
    assert not netns.exists(host.netns)
    assert os.path.isdir(host.dirs["etc"])  # the host's directories stay


def test_start_again_after_libvirtd_was_killed(data_dir):
    host = LocalQemuHost(data_dir, "host4").start()
    conn = host.open()
    conn.createXML(tiny_domain_xml("tiny4", "52:54:00:10:00:0a"), 0)
    conn.close()
    stale = host_pids(host)
    os.kill(stale["libvirtd"][0], signal.SIGKILL)
    assert wait_for(lambda: not _alive(stale["libvirtd"][0]), timeout=5)
    # The QEMU and dnsmasq it started are still running, and the namespace is still there.
    assert alive({k: v for k, v in stale.items() if k != "libvirtd"})
    assert netns.exists(host.netns)

    # A new process (the old one crashed with it) starts the same host again.
    again = LocalQemuHost(data_dir, "host4")
    again.start()
    try:
        assert alive(stale) == []  # the crash's leftovers are gone
        conn = again.open()
        assert conn.getType() == "QEMU" and network_names(conn) == ["labcloud"]
        assert conn.listAllDomains() == []
        conn.close()
    finally:
        again.stop()
    # And once more after a clean stop.
    again.start()
    again.stop()
    assert not netns.exists(again.netns)


def test_stop_powers_off_many_domains_at_once(data_dir):
    host = LocalQemuHost(data_dir, "host5").start()
    try:
        conn = host.open()
        for i in range(6):
            conn.defineXML(tiny_domain_xml(f"many{i}", f"52:54:00:10:01:{i:02x}")).create()
        conn.close()
        pids = host_pids(host)
        assert len(pids["qemu"]) == 6
        started = time.monotonic()
        host.stop()
        took = time.monotonic() - started
        print(f"stop with six domains: {took:.2f} s")
        assert alive(pids) == [] and not netns.exists(host.netns)
        # Destroyed together, not one after another; a serial ACPI shutdown would take far longer.
        assert took < 8
        host.start()
        conn = host.open()
        # Definitions stay: the guests are shut off, not lost.
        states = {d.name(): d.state()[0] for d in conn.listAllDomains()}
        assert states == {f"many{i}": libvirt.VIR_DOMAIN_SHUTOFF for i in range(6)}
        conn.close()
    finally:
        host.stop()


def test_next_start_cleans_up_after_a_launcher_that_died(data_dir):
    """A launcher killed with -9 stops nothing: its daemon, guest, dnsmasq and namespace run on.
    The next start on the same data dir ends them first; the guest's definition and its DHCP entry
    stay, so it is shut off and starts again (with its address)."""
    mac, ip = "52:54:00:10:00:0b", "10.99.0.11"
    first = LocalQemuHost(data_dir, "host6").start()
    conn = first.open()
    add_dhcp_host(conn, mac, ip, "tiny6")
    conn.defineXML(tiny_domain_xml("tiny6", mac)).create()
    conn.close()
    stale = host_pids(first)
    assert stale["libvirtd"] and stale["qemu"] and stale["dnsmasq"]

    again = LocalQemuHost(data_dir, "host6")  # a new launcher knows nothing of the old one
    try:
        again.start()
        assert alive(stale) == []
        conn = again.open()
        domain = conn.lookupByName("tiny6")
        assert domain.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
        assert {(e["mac"], e["ip"]) for e in dhcp_hosts(conn)} == {(mac, ip)}
        domain.create()
        assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        network = conn.networkLookupByName("labcloud")
        lease = wait_for(lambda: [l for l in network.DHCPLeases() if l["mac"] == mac], timeout=25)
        assert lease and lease[0]["ipaddr"] == ip
        conn.close()
    finally:
        again.stop()
    assert not netns.exists(again.netns)
    first.process.wait(5)  # the old daemon was our child: reap it


def test_all_in_lists_every_host_of_a_data_dir(tmp_path):
    for name in ("host1", "host2"):
        os.makedirs(tmp_path / "hosts" / name)
    assert [h.host_name for h in LocalQemuHost.all_in(str(tmp_path))] == ["host1", "host2"]
    assert LocalQemuHost.all_in(str(tmp_path / "empty")) == []
