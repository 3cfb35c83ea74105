"""labcloud's DHCP host entries, on the test driver's own (in-memory) network `default`."""
import uuid

import libvirt
import pytest

from hostagent import dhcp

NETWORK = "default"


@pytest.fixture
def net(conn):
    yield conn
    for entry in dhcp.dhcp_hosts(conn, NETWORK):  # the test driver's state outlives the test
        dhcp.remove_dhcp_host(conn, entry["mac"], network=NETWORK)


def test_entry_names_carry_the_instance_id():
    instance_id = str(uuid.uuid4())
    assert dhcp.entry_name(instance_id) == "i-" + instance_id.replace("-", "")
    assert dhcp.instance_id_of(dhcp.entry_name(instance_id)) == instance_id
    for foreign in ("tiny1", "i-1234", "", None, "i-" + "g" * 32, "x" + dhcp.entry_name(instance_id)):
        assert dhcp.instance_id_of(foreign) is None


def test_only_labcloud_entries_are_listed(net):
    ours = str(uuid.uuid4())
    dhcp.add_dhcp_host(net, "aa:00:00:00:00:01", "192.168.122.11", dhcp.entry_name(ours), network=NETWORK)
    dhcp.add_dhcp_host(net, "aa:00:00:00:00:02", "192.168.122.12", "someone-else", network=NETWORK)
    assert dhcp.instance_entries(net, NETWORK) == [
        {"name": dhcp.entry_name(ours), "mac": "aa:00:00:00:00:01", "ip": "192.168.122.11",
         "instance_id": ours}]


def test_instance_entry_is_removed_by_name_or_by_mac(net):
    lost, other, by_mac = (str(uuid.uuid4()) for _ in range(3))
    dhcp.add_dhcp_host(net, "aa:00:00:00:00:01", "192.168.122.11", dhcp.entry_name(lost), network=NETWORK)
    dhcp.add_dhcp_host(net, "aa:00:00:00:00:02", "192.168.122.12", dhcp.entry_name(other), network=NETWORK)
    dhcp.add_dhcp_host(net, "aa:00:00:00:00:03", "192.168.122.13", "renamed", network=NETWORK)

    # No MAC known (the domain and its metadata are gone): the entry is found by its name.
    removed, left = dhcp.remove_instance_hosts(net, lost, network=NETWORK)
    assert [entry["ip"] for entry in removed] == ["192.168.122.11"]
    assert {entry["ip"] for entry in left} == {"192.168.122.12", "192.168.122.13"}
    assert dhcp.remove_instance_hosts(net, lost, network=NETWORK) == ([], left)  # idempotent

    # The MAC the domain recorded finds an entry under another name too.
    removed, _left = dhcp.remove_instance_hosts(net, by_mac, "AA:00:00:00:00:03", "192.168.122.13",
                                                network=NETWORK)
    assert [entry["name"] for entry in removed] == ["renamed"]
    assert [entry["instance_id"] for entry in dhcp.instance_entries(net, NETWORK)] == [other]


def test_missing_network_is_an_error(conn):
    with pytest.raises(libvirt.libvirtError):
        dhcp.instance_entries(conn, "no-such-network")
