"""Unit tests of address allocation against a real (migrated) SQLite database."""
import ipaddress
import threading

import pytest
from sqlalchemy.orm import sessionmaker

from common.db import make_engine
from common.errors import CapacityExhausted, Conflict
from services.network import addresses, subnets
from tests.databases import migrated_url


@pytest.fixture(params=["sqlite", "postgresql"])
def session_factory(request):
    """Every allocation test runs on SQLite (the default) and PostgreSQL (what compose deploys)."""
    url = migrated_url(request, request.param, "services.network")
    engine = make_engine(url)
    yield sessionmaker(bind=engine, expire_on_commit=False)
    engine.dispose()


def test_mac_follows_orca_scheme():
    assert addresses.mac_for_ip("10.99.0.2") == "aa:00:0a:63:00:02"
    first = int(addresses.mac_for_ip("10.0.0.1").split(":")[0], 16)
    assert first & 0x02 and not first & 0x01  # locally administered, unicast


def test_allocation_is_idempotent_per_owner_and_skips_gateway(session_factory):
    with session_factory() as session:
        first, created = addresses.allocate_address(session, "vm-1")
        again, created_again = addresses.allocate_address(session, "vm-1")
    assert created and not created_again
    assert first["ip"] == again["ip"] == "10.99.0.2"  # .1 is the gateway
    assert first["mac"] == "aa:00:0a:63:00:02"


def test_released_address_is_reused(session_factory):
    with session_factory() as session:
        a, _ = addresses.allocate_address(session, "a")
        b, _ = addresses.allocate_address(session, "b")
        assert addresses.release_address(session, "a")["ip"] == a["ip"]
        assert addresses.release_address(session, "a") is None
        c, _ = addresses.allocate_address(session, "c")
    assert c["ip"] == a["ip"] and c["ip"] != b["ip"]


def test_small_subnet_runs_out_with_a_clear_error(session_factory):
    with session_factory() as session:
        subnets.create_subnet(session, {"name": "tiny", "cidr": "192.168.50.0/29"})
        got = [addresses.allocate_address(session, f"vm{i}", "tiny")[0]["ip"] for i in range(5)]
        assert len(set(got)) == 5
        assert all(ipaddress.IPv4Address(ip) in ipaddress.IPv4Network("192.168.50.0/29") for ip in got)
        with pytest.raises(CapacityExhausted):
            addresses.allocate_address(session, "one-too-many", "tiny")


def test_overlapping_subnet_is_refused(session_factory):
    with session_factory() as session:
        with pytest.raises(Conflict) as err:
            subnets.create_subnet(session, {"name": "other", "cidr": "10.99.1.0/24"})
    assert "cidr" in err.value.fields


def test_concurrent_allocators_never_hand_out_the_same_ip(session_factory):
    """Several writers on separate connections (as replicas would be) race for addresses."""
    results, errors = [], []

    def worker(n):
        try:
            with session_factory() as session:
                for i in range(15):
                    results.append(addresses.allocate_address(session, f"w{n}-{i}")[0])
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 60
    assert len({r["ip"] for r in results}) == 60
    assert len({r["mac"] for r in results}) == 60
