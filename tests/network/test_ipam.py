"""Subnets and the free-range allocator (ipam.py) on SQLite and PostgreSQL: allocation ranges and
reserved addresses are never handed out, the lowest free address comes first, MAC policies,
the pre-approval list, deletes; and three replicas (OS processes) allocating 5,000 addresses of
one subnet at once with no duplicate, whose released addresses are all reusable."""
import ipaddress
import os
import sys

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from common.db import make_engine
from common.errors import CapacityExhausted, Conflict, InvalidInput
from services.network import addresses, ipam, subnets
from services.network.models import FreeRange
from tests.instances.racing import race
from tests.databases import migrated_url

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def database_url(request, engine_kind):
    return migrated_url(request, engine_kind, "services.network")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request):
    return database_url(request, request.param)


@pytest.fixture
def session(url):
    engine = make_engine(url)
    with sessionmaker(bind=engine, expire_on_commit=False)() as session:
        yield session
    engine.dispose()


def allocate(session, owner, subnet):
    return addresses.allocate_address(session, owner, subnet)[0]


def test_free_ranges_leave_out_the_holes():
    assert ipam.free_ranges(10, 20, [9, 10, 15, 16, 20, 25]) == [(11, 14), (17, 19)]
    assert ipam.free_ranges(10, 10, []) == [(10, 10)]
    assert ipam.free_ranges(10, 12, [10, 11, 12]) == []


def test_only_the_allocation_range_without_gateway_and_reserved_is_handed_out(session):
    made = subnets.create_subnet(session, {"name": "lab", "cidr": "192.168.60.0/24", "gateway": "192.168.60.1",
                                           "allocation_start": "192.168.60.20", "allocation_end": "192.168.60.30",
                                           "reserved": ["192.168.60.22"], "dns_servers": ["192.168.60.2"]})
    assert (made["capacity"], made["free"], made["reserved"]) == (10, 10, ["192.168.60.22"])
    got = [allocate(session, f"vm{n}", "lab") for n in range(10)]
    assert [a["ip"] for a in got] == [f"192.168.60.{n}" for n in (20, 21, 23, 24, 25, 26, 27, 28, 29, 30)]
    assert got[0]["dns_servers"] == ["192.168.60.2"] and got[0]["gateway"] == "192.168.60.1"
    with pytest.raises(CapacityExhausted) as full:
        allocate(session, "one-too-many", "lab")
    assert full.value.fields == {"subnet": ["no free address in subnet lab"]}
    # Released ones come back lowest first.
    addresses.release_address(session, "vm5")
    addresses.release_address(session, "vm1")
    assert [allocate(session, "again-1", "lab")["ip"], allocate(session, "again-2", "lab")["ip"]] == [
        "192.168.60.21", "192.168.60.26"]


def test_reserving_and_releasing_an_address(session):
    made = subnets.create_subnet(session, {"name": "res", "cidr": "192.168.61.0/28"})
    first = allocate(session, "a", "res")
    assert first["ip"] == "192.168.61.2"
    with pytest.raises(Conflict) as held:
        subnets.reserve(session, made["id"], "192.168.61.2")
    assert held.value.fields == {"ip": ["allocated"]}
    subnets.reserve(session, made["id"], "192.168.61.3", "the printer")
    assert subnets.reserve(session, made["id"], "192.168.61.3")["reserved"] == ["192.168.61.3"]   # again: same
    assert allocate(session, "b", "res")["ip"] == "192.168.61.4"
    subnets.unreserve(session, made["id"], "192.168.61.3")
    assert allocate(session, "c", "res")["ip"] == "192.168.61.3"
    with pytest.raises(InvalidInput) as outside:
        subnets.reserve(session, made["id"], "10.0.0.1")
    assert "ip" in outside.value.fields


def test_random_macs_are_local_unicast_and_unique_and_have_no_list(session):
    made = subnets.create_subnet(session, {"name": "rnd", "cidr": "192.168.62.0/26", "mac_policy": "random"})
    macs = [allocate(session, f"r{n}", "rnd")["mac"] for n in range(40)]
    assert len(set(macs)) == 40
    for mac in macs:
        first = int(mac.split(":")[0], 16)
        assert first & 0x02 and not first & 0x01 and not mac.startswith("aa:00:"), mac
    with pytest.raises(Conflict):
        subnets.mac_list(session, made["id"])


def test_the_pre_approval_list_is_every_address_guests_can_get(session):
    made = subnets.create_subnet(session, {"name": "orca", "cidr": "192.168.63.0/27",
                                           "allocation_start": "192.168.63.20", "reserved": ["192.168.63.25"]})
    listed = subnets.mac_list(session, made["id"])
    assert [e["ip"] for e in listed] == [f"192.168.63.{n}" for n in range(20, 31) if n != 25]
    assert listed[0] == {"ip": "192.168.63.20", "mac": "aa:00:c0:a8:3f:14"}
    assert len(listed) == made["capacity"]


def test_bad_subnets_name_the_field(session):
    for request, field in (({"allocation_start": "192.168.64.50", "allocation_end": "192.168.64.40"}, "allocation_end"),
                           ({"gateway": "192.168.65.1"}, "gateway"),
                           ({"reserved": ["192.168.64.255"]}, "reserved")):
        with pytest.raises(InvalidInput) as bad:
            subnets.create_subnet(session, {"name": "bad", "cidr": "192.168.64.0/24", **request})
        assert field in bad.value.fields, request


def test_delete_only_an_unused_non_default_subnet(session):
    made = subnets.create_subnet(session, {"name": "gone", "cidr": "192.168.66.0/29"})
    allocate(session, "x", "gone")
    with pytest.raises(Conflict):
        subnets.delete_subnet(session, made["id"])
    addresses.release_address(session, "x")
    assert subnets.delete_subnet(session, made["id"])["name"] == "gone"
    assert session.scalars(select(FreeRange).where(FreeRange.subnet_id == made["id"])).all() == []
    default = next(s for s in subnets.list_subnets(session) if s["is_default"])
    with pytest.raises(Conflict):
        subnets.delete_subnet(session, default["id"])


def test_the_default_subnet_leaves_the_local_hosts_addresses_alone(session):
    default = next(s for s in subnets.list_subnets(session) if s["is_default"])
    # labcloud/qemu_host.py: .183-.246 dynamic DHCP, .247-.254 the bridges of hosts 2-9.
    assert (default["allocation_start"], default["allocation_end"]) == ("10.99.0.1", "10.99.3.182")
    assert default["capacity"] == 949   # .2 .. 3.182


def run_replicas(url, subnet, per_replica, then=None):
    argv = [sys.executable, "-m", "tests.network.allocator", url, subnet]
    outputs = race([argv + [f"r{n}", str(per_replica)] + ([then] if then else []) for n in range(3)], REPO,
                   timeout=300)
    return [line.split() for out in outputs for line in out.splitlines()]


@pytest.mark.parametrize("engine_kind,total", [("postgresql", 5001), ("sqlite", 600)])
def test_three_replicas_at_once_never_hand_out_one_address_twice(request, engine_kind, total):
    """5,001 addresses on PostgreSQL (what compose deploys; 600 on SQLite, one writer at a time):
    each replica allocates its third, then releases all of it, while the others still allocate;
    then the three allocate again and get the same lowest addresses back."""
    url = database_url(request, engine_kind)
    engine = make_engine(url)
    with sessionmaker(bind=engine, expire_on_commit=False)() as session:
        made = subnets.create_subnet(session, {"name": "big", "cidr": "10.50.0.0/18"})
    per_replica = total // 3
    rows = run_replicas(url, "big", per_replica, then="release")
    ips = [ip for _owner, ip, _mac in rows]
    assert len(rows) == 3 * per_replica
    # While they were held: no address and no MAC twice (a replica releases only after all of its
    # own allocations, but another may reuse what it released: an address seen twice must then
    # have gone to different replicas, one after the other's release).
    by_replica = {}
    for owner, ip, _mac in rows:
        by_replica.setdefault(owner.split("-")[0], []).append(ip)
    assert all(len(set(held)) == len(held) for held in by_replica.values())
    with sessionmaker(bind=engine, expire_on_commit=False)() as session:
        assert subnets.summary(session, subnets.get(session, made["id"]))["allocated"] == 0
    again = run_replicas(url, "big", per_replica)
    ips = [ip for _owner, ip, _mac in again]
    assert len(set(ips)) == len(ips) and len({m for *_, m in again}) == len(ips)
    lowest = [str(ipaddress.IPv4Address("10.50.0.2") + n) for n in range(len(ips))]
    assert sorted(ips, key=ipaddress.IPv4Address) == lowest   # every released one reused, lowest first
    engine.dispose()
