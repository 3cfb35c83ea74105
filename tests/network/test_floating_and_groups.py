"""Floating IPs (floating.py), security groups (security_groups.py) and the rule set each host is
pushed (host_rules.py), on SQLite and PostgreSQL."""
import pytest

from common.errors import CapacityExhausted, Conflict, InvalidInput, NotFound, QuotaExceeded
from services.network import addresses, floating, host_rules, security_groups, subnets
from tests.network.test_ipam import session, url  # noqa: F401  (fixtures)

COURSE, OTHER = 40, 41
UNLIMITED = {"project": {}, "user": {}}


@pytest.fixture
def pool(session):  # noqa: F811
    return subnets.create_subnet(session, {"name": "public", "cidr": "203.0.113.0/29", "purpose": "floating",
                                           "reserved": ["203.0.113.1"]})


def on(session, owner, host, project=COURSE):  # noqa: F811
    """An instance's address on `host`, in its course's default group."""
    address = addresses.allocate_address(session, owner, None, project, host)[0]
    security_groups.bind(session, owner, security_groups.groups_by_name(session, project, None))
    return address["ip"]


def test_a_pool_hands_out_its_lowest_free_address_and_takes_released_ones_back(session, pool):  # noqa: F811
    assert (pool["gateway"], pool["capacity"]) == ("", 5)        # no gateway: .2-.6, .1 reserved
    assert subnets.list_subnets(session) and all(s["name"] != "public" for s in subnets.list_subnets(session))
    got = [floating.allocate(session, COURSE, 7, UNLIMITED).ip for _ in range(5)]
    assert got == [f"203.0.113.{n}" for n in range(2, 7)]
    with pytest.raises(CapacityExhausted) as full:
        floating.allocate(session, COURSE, 7, UNLIMITED)
    assert "pool" in full.value.fields
    third = floating.list_for(session, [COURSE])[2]
    floating.release(session, third)
    assert floating.allocate(session, OTHER, 8, UNLIMITED).ip == "203.0.113.4"
    with pytest.raises(NotFound):
        addresses.allocate_address(session, "vm", "public")     # no guest gets a pool's address
    with pytest.raises(Conflict):
        subnets.delete_subnet(session, pool["id"], "floating")


def test_the_quota_counts_the_project_and_the_users_share(session, pool):  # noqa: F811
    limits = {"project": {"floating_ips": 2}, "user": {"floating_ips": 1}}
    floating.allocate(session, COURSE, 7, limits)
    with pytest.raises(QuotaExceeded) as over:
        floating.allocate(session, COURSE, 7, limits)
    assert "floating_ips" in over.value.fields
    floating.allocate(session, COURSE, 8, limits)
    with pytest.raises(QuotaExceeded):
        floating.allocate(session, COURSE, 9, limits)
    assert floating.allocate(session, OTHER, 7, limits).project_id == OTHER   # another course's own count


def test_associate_disassociate_and_the_hosts_they_touch(session, pool):  # noqa: F811
    fixed = on(session, "vm-1", "h1")
    on(session, "vm-2", "h2")
    fip = floating.allocate(session, COURSE, 7, UNLIMITED)
    assert floating.associate(session, fip, "vm-1") == ["h1"]
    assert floating.associate(session, fip, "vm-1") == ["h1"]          # again: the same
    assert floating.describe(session, fip)["fixed_ip"] == fixed
    with pytest.raises(Conflict) as taken:
        floating.associate(session, fip, "vm-2")
    assert "instance" in taken.value.fields
    other = floating.allocate(session, COURSE, 7, UNLIMITED)
    with pytest.raises(Conflict):
        floating.associate(session, other, "vm-1")                    # one floating IP per instance
    with pytest.raises(Conflict):
        floating.associate(session, other, "no-such-vm")
    assert host_rules.ruleset(session, "h1")["floating"] == [
        {"floating_ip": fip.ip, "fixed_ip": fixed, "subnet": "10.99.0.0/22"}]
    assert floating.disassociate(session, fip) == ["h1"] and floating.disassociate(session, fip) == []
    assert host_rules.ruleset(session, "h1")["floating"] == []
    floating.associate(session, fip, "vm-1")
    described, hosts = floating.release(session, fip)
    assert hosts == ["h1"] and described["instance"] == "vm-1" and host_rules.ruleset(session, "h1")["floating"] == []


def test_rules_are_checked_and_adding_one_twice_keeps_one(session):  # noqa: F811
    default = security_groups.ensure_default(session, COURSE)
    assert security_groups.ensure_default(session, COURSE).id == default.id
    web = security_groups.create(session, COURSE, "web")
    for bad, field in (({"protocol": "tcp"}, "port_min"), ({"protocol": "icmp", "port_min": 1}, "port_min"),
                       ({"protocol": "tcp", "port_min": 90, "port_max": 80}, "port_max"),
                       ({"protocol": "any"}, "cidr"), ({"protocol": "any", "cidr": "x"}, "cidr"),
                       ({"protocol": "any", "cidr": "0.0.0.0/0", "remote_group": "default"}, "cidr"),
                       ({"protocol": "any", "remote_group": "nosuch"}, "remote_group")):
        with pytest.raises(InvalidInput) as refused:
            security_groups.add_rule(session, web, dict({"direction": "ingress"}, **bad))
        assert field in refused.value.fields, bad
    rule = {"direction": "ingress", "protocol": "tcp", "port_min": 80, "cidr": "10.0.0.0/8"}
    first = security_groups.add_rule(session, web, rule)
    assert security_groups.add_rule(session, web, rule).id == first.id
    assert len(security_groups.describe(session, web)["rules"]) == 1
    with pytest.raises(Conflict):
        security_groups.create(session, COURSE, "web")
    with pytest.raises(Conflict):
        security_groups.delete_group(session, default)
    with pytest.raises(InvalidInput) as unknown:
        security_groups.groups_by_name(session, COURSE, ["web", "nosuch"])
    assert "security_groups" in unknown.value.fields


def test_a_hosts_rule_set_follows_groups_members_and_migrations(session):  # noqa: F811
    a1 = on(session, "a1", "h1")
    a2 = on(session, "a2", "h2")
    b1 = on(session, "b1", "h1", project=OTHER)
    web = security_groups.create(session, COURSE, "web")
    security_groups.add_rule(session, web, {"direction": "ingress", "protocol": "tcp", "port_min": 80,
                                            "remote_group": "default"})
    security_groups.bind(session, "a1", security_groups.groups_by_name(session, COURSE, ["default", "web"]))
    assert security_groups.hosts_affected(session, web.id) == ["h1"]
    default = security_groups.groups_by_name(session, COURSE, None)[0]
    assert security_groups.hosts_affected(session, default.id) == ["h1", "h2"]   # web names default
    ports = {p["ip"]: p for p in host_rules.ruleset(session, "h1")["ports"]}
    assert set(ports) == {a1, b1}
    assert {(r["protocol"], r["port_min"], tuple(r["peers"])) for r in ports[a1]["ingress"]} == {
        ("tcp", 22, ("0.0.0.0/0",)), ("tcp", 80, (f"{a1}/32", f"{a2}/32"))}
    assert [(r["protocol"], r["peers"]) for r in ports[b1]["ingress"]] == [("tcp", ["0.0.0.0/0"])]
    # While a1 migrates to h2 both hosts filter it; after, only h2.
    assert addresses.place(session, "a1", "h1", "h2") == ["h1", "h2"]
    assert a1 in {p["ip"] for p in host_rules.ruleset(session, "h2")["ports"]}
    addresses.place(session, "a1", "h2")
    assert a1 not in {p["ip"] for p in host_rules.ruleset(session, "h1")["ports"]}
    assert host_rules.known_hosts(session) == ["h1", "h2"]
    # An address in no group is not filtered; one released leaves the rule sets.
    addresses.allocate_address(session, "legacy", None, None, "h1")
    assert "legacy" not in {p["ip"] for p in host_rules.ruleset(session, "h1")["ports"]}
    addresses.release_address(session, "b1")
    security_groups.unbind(session, "b1")
    session.commit()
    assert b1 not in {p["ip"] for p in host_rules.ruleset(session, "h1")["ports"]}


def test_a_deleted_course_leaves_no_floating_ip_group_or_rule(session, pool):  # noqa: F811
    on(session, "c1", "h1", project=OTHER)
    web_id = security_groups.create(session, COURSE, "web").id
    other_default = security_groups.ensure_default(session, OTHER)
    security_groups.add_rule(session, other_default, {"direction": "ingress", "protocol": "any",
                                                      "remote_group": "default"})
    kept = floating.allocate(session, OTHER, 8, UNLIMITED)
    for _ in range(2):
        floating.allocate(session, COURSE, 7, UNLIMITED)
    assert floating.release_all_of(session, COURSE) == []
    assert floating.release_all_of(session, COURSE) == []                 # a redelivery: nothing more
    assert [f.ip for f in floating.list_for(session)] == [kept.ip]
    assert security_groups.delete_all_of(session, COURSE) == [] and security_groups.delete_all_of(session, COURSE) == []
    assert security_groups.get(session, web_id) is None
    assert [g["name"] for g in security_groups.list_for(session, OTHER)] == ["default"]
    assert subnets.summary(session, subnets.get(session, pool["id"], "floating"))["free"] == 4
