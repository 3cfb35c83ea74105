"""Courses' subnet blocks (blocks.py) on SQLite and PostgreSQL: a /28-/22 aligned block of the
subnet becomes one project's; its guests get addresses only from it, nobody else gets any of them,
and it goes back to the shared pool when it ends and its addresses are free."""
import datetime as dt
import ipaddress

import pytest

from common.errors import CapacityExhausted, Conflict
from services.network import addresses, blocks, subnets
from tests.network.test_ipam import allocate, session, url  # noqa: F401  (fixtures)

COURSE, OTHER = 30, 31
NOW = dt.datetime(2026, 12, 2, 12, 0, 0)


def take(session, owner, project, subnet="lab"):  # noqa: F811
    return addresses.allocate_address(session, owner, subnet, project)[0]["ip"]


@pytest.fixture
def lab(session):  # noqa: F811
    subnets.create_subnet(session, {"name": "lab", "cidr": "10.80.0.0/24", "allocation_start": "10.80.0.20"})
    return session


def test_a_course_gets_its_block_and_nobody_else_does(lab):
    session = lab
    assert take(session, "before", OTHER) == "10.80.0.20"
    block = blocks.reserve(session, COURSE, 28, "lab")
    # The lowest aligned /28 wholly free: .16-.31 holds .20 (taken) and .16-.19 (below the range).
    assert (block["cidr"], block["size"], block["free"]) == ("10.80.0.32/28", 16, 16)
    mine = [take(session, f"c{n}", COURSE) for n in range(16)]
    assert mine == [f"10.80.0.{n}" for n in range(32, 48)]
    with pytest.raises(CapacityExhausted) as full:
        take(session, "c16", COURSE)
    assert "10.80.0.32/28" in full.value.fields["subnet"][0]
    others = [take(session, f"o{n}", OTHER) for n in range(13)]
    assert not set(others) & set(mine)
    assert others == [f"10.80.0.{n}" for n in range(21, 32)] + ["10.80.0.48", "10.80.0.49"]   # around the block
    assert blocks.list_for(session, COURSE)[0]["allocated"] == 16
    with pytest.raises(Conflict):
        blocks.reserve(session, COURSE, 28, "lab")


def test_released_addresses_go_back_to_the_block_then_the_block_to_the_pool(lab):
    session = lab
    block = blocks.reserve(session, COURSE, 28, "lab", ends_at=NOW + dt.timedelta(days=1))
    first = take(session, "c1", COURSE)
    addresses.release_address(session, "c1")
    assert take(session, "c2", COURSE) == first   # back in the block, reused first
    # It ends while a guest holds an address: it waits; new guests of the course use the pool.
    described, returned = blocks.end(session, block["id"], NOW)
    assert not returned and described["allocated"] == 1
    assert blocks.end_expired(session, NOW) == []
    addresses.release_address(session, "c2")
    assert blocks.end_expired(session, NOW + dt.timedelta(seconds=1)) == ["10.80.0.32/28"]
    assert blocks.list_for(session, COURSE) == []
    # Its addresses are the shared pool's again.
    got = {take(session, f"x{n}", OTHER) for n in range(40)}
    assert {str(ipaddress.IPv4Address("10.80.0.32") + n) for n in range(16)} <= got


def test_no_room_for_a_block_is_refused_naming_the_size(lab):
    session = lab
    # Aligned /26s wholly in the range .20-.254: .64/26 and .128/26 (.0/26 starts below .20,
    # .192/26 ends on the broadcast address).
    assert [blocks.reserve(session, p, 26, "lab")["cidr"] for p in (COURSE, OTHER)] == ["10.80.0.64/26",
                                                                                     "10.80.0.128/26"]
    with pytest.raises(CapacityExhausted) as none:
        blocks.reserve(session, 32, 26, "lab")
    assert "prefixlen" in none.value.fields


def test_a_returned_block_joins_its_neighbours_again(lab):
    session = lab
    block = blocks.reserve(session, COURSE, 28, "lab")
    assert block["cidr"] == "10.80.0.32/28"
    assert blocks.end(session, block["id"], NOW)[1]   # nothing held: back at once
    # .21-.254 is one free run again: the lowest aligned /27 is .32/27, which spans the old block.
    assert blocks.reserve(session, OTHER, 27, "lab")["cidr"] == "10.80.0.32/27"


def test_an_end_in_the_past_is_refused_naming_it(lab):
    from common.errors import InvalidInput
    with pytest.raises(InvalidInput) as past:
        blocks.reserve(lab, COURSE, 28, "lab", ends_at=NOW, now=NOW + dt.timedelta(seconds=1))
    assert "ends_at" in past.value.fields
