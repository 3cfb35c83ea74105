"""Floating IPs and security groups end to end (REST and the installed CLI) on the shared stack
(libvirt's test driver: the host agent keeps the rule set it is pushed, which it reports with
`network_rules`; tests/hostagent/test_netfilter_netns.py proves what such a set does on a real
bridge). A teacher makes a group, a student's instance is created in it, gets a floating IP; the
host is told at every step, a rule change reaches it live, and everything goes with the instance.
The periodic push restores a host's lost rules and removes rules no record owns."""
import ipaddress
import json
import random
import tempfile

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user, tiny_image
from tests.e2e.portal import unique
from tests.e2e.test_cli import ok, run


@pytest.fixture
def rpc(stack):
    with ClusterRpcProxy({"AMQP_URI": stack.amqp_uri}, timeout=30) as proxy:
        yield proxy


def rules_of(rpc, ip, host="host1"):
    """(the filtered port of `ip` on the host, the floating NAT entries to `ip`)."""
    applied = rpc[f"hostagent_{host}"].network_rules()
    ports = [p for p in applied["ports"] if p["ip"] == ip]
    return (ports[0] if ports else None), [f for f in applied["floating"] if f["fixed_ip"] == ip]


def create(api, name, **extra):
    flavor = min(api.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    image = tiny_image(api)
    made = api.call("POST", "/instances", 202, json=dict(
        name=name, flavor=flavor["id"], image=image["id"], key=api.key, **extra)).json()
    return api.wait_for(f"/instances/{made['id']}", lambda r: r.json()["state"] in ("running", "error"),
                        timeout=60).json()


def test_groups_and_a_floating_ip_from_creation_to_deletion(stack, rpc):
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    student = approved_user(stack.url, admin, unique("fip"))
    course = student.project
    teacher = approved_user(stack.url, admin, unique("tch"), project=course)
    admin.call("POST", f"/projects/{course}/members", 201, json={"user": teacher.user_id, "role": "manager"})
    username, password = teacher.username, teacher.password
    teacher = Api(stack.url).login(username, password)   # a token that knows the new role
    teacher.username, teacher.password = username, password
    cidr = f"100.66.{random.randrange(256)}.0/28"
    pool = admin.call("POST", "/floating-pools", 201, json={"name": unique("pool-"), "cidr": cidr}).json()
    assert (pool["capacity"], pool["free"]) == (14, 14)

    # The course's default group: SSH in from anywhere, everything out.
    [default] = student.call("GET", f"/projects/{course}/security-groups", 200).json()
    assert default["name"] == "default"
    assert {(r["direction"], r["protocol"], r["port_min"], r["cidr"]) for r in default["rules"]} == {
        ("ingress", "tcp", 22, "0.0.0.0/0"), ("egress", "any", None, "0.0.0.0/0")}
    student.call("POST", "/security-groups", 403, json={"project": course, "name": "web"})
    web = teacher.call("POST", "/security-groups", 201, json={"project": course, "name": "web"}).json()
    web = teacher.call("POST", f"/security-groups/{web['id']}/rules", 201, json={
        "protocol": "tcp", "port_min": 80, "port_max": 81, "remote_group": "default"}).json()
    bad = teacher.call("POST", f"/security-groups/{web['id']}/rules", 400, json={
        "protocol": "icmp", "port_min": 3, "cidr": "0.0.0.0/0"}).json()
    assert "port_min" in bad["error"]["fields"]
    assert "security_groups" in student.call("POST", "/instances", 400, json={
        "name": "nope", "flavor": 1, "image": 1, "key": student.key, "security_groups": ["nosuch"]}).json()["error"]["fields"]

    plain = create(student, "plain")
    webby = create(student, "webby", security_groups=["default", "web"])
    assert plain["state"] == webby["state"] == "running"
    port, nat = rules_of(rpc, webby["ip"])
    assert nat == [] and {(r["protocol"], r["port_min"], tuple(r["peers"])) for r in port["ingress"]} == {
        ("tcp", 22, ("0.0.0.0/0",)),
        ("tcp", 80, tuple(sorted((f"{plain['ip']}/32", f"{webby['ip']}/32"))))}   # web from default's members
    assert [g["name"] for g in student.call("GET", f"/instances/{webby['id']}/security-groups", 200).json()] == [
        "default", "web"]

    # A floating IP, through the CLI: allocated, associated, shown.
    home = tempfile.mkdtemp(prefix="labcloud-cli-fip-")
    ok(run(home, "login", "--url", stack.url, "--username", student.username, "--password-stdin",
           stdin=student.password + "\n"))
    address = ok(run(home, "ip", "allocate", "--course", str(course), "--pool", pool["name"])).strip()
    assert address == str(ipaddress.IPv4Network(cidr)[1])     # the pool's lowest
    assert ok(run(home, "ip", "associate", address, "webby")).strip() == f"{address} -> webby ({webby['ip']})"
    assert rules_of(rpc, webby["ip"])[1] == [{"floating_ip": address, "fixed_ip": webby["ip"], "subnet": "10.99.0.0/22"}]
    [shown] = [f for f in json.loads(ok(run(home, "ip", "list", "--json"))) if f["ip"] == address]
    assert (shown["instance"], shown["fixed_ip"]) == (webby["id"], webby["ip"])
    again = student.call("POST", f"/floating-ips/{shown['id']}/associate", 409, json={"instance": plain["id"]}).json()
    assert "instance" in again["error"]["fields"]

    # A rule change reaches the host at once; so does a change of the instance's groups.
    ok(run(home, "logout"))
    ok(run(home, "login", "--url", stack.url, "--username", teacher.username, "--password-stdin",
           stdin=teacher.password + "\n"))
    ok(run(home, "secgroup", "rule-add", str(course), "web", "--protocol", "udp", "--port", "5000-5010",
           "--cidr", "192.0.2.0/24"))
    assert ("udp", 5000, 5010) in {(r["protocol"], r["port_min"], r["port_max"]) for r in rules_of(rpc, webby["ip"])[0]["ingress"]}
    assert ok(run(home, "secgroup", "instance", "webby", "--set", "default")).strip() == "default"
    assert {r["port_min"] for r in rules_of(rpc, webby["ip"])[0]["ingress"]} == {22}
    student.call("PUT", f"/instances/{webby['id']}/security-groups", 200, json={"security_groups": ["web", "default"]})
    assert {r["port_min"] for r in rules_of(rpc, webby["ip"])[0]["ingress"]} == {22, 80, 5000}
    in_use = teacher.call("DELETE", f"/security-groups/{default['id']}", 409).json()
    assert "group" in in_use["error"]["fields"]

    # The instance goes: its rules and its NAT go from the host; the address stays the course's.
    student.call("DELETE", f"/instances/{webby['id']}", 202)
    student.wait_for(f"/instances/{webby['id']}", lambda r: r.status_code == 404, timeout=60)
    assert rules_of(rpc, webby["ip"]) == (None, [])
    kept = student.call("GET", f"/floating-ips/{shown['id']}", 200).json()
    assert kept["instance"] is None and kept["ip"] == address
    student.call("DELETE", f"/floating-ips/{shown['id']}", 200)
    assert [p for p in admin.call("GET", "/floating-pools", 200).json() if p["id"] == pool["id"]][0]["free"] == 14
    student.call("DELETE", f"/instances/{plain['id']}", 202)


def test_a_course_over_its_floating_ip_quota_is_told_so(stack):
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    student = approved_user(stack.url, admin, unique("fq"))
    admin.call("PUT", f"/projects/{student.project}/quota", 200, json={"floating_ips": 1})
    cidr = f"100.67.{random.randrange(256)}.0/29"
    pool = admin.call("POST", "/floating-pools", 201, json={"name": unique("pool-"), "cidr": cidr}).json()
    student.call("POST", "/floating-ips", 201, json={"project": student.project, "pool": pool["name"]})
    over = student.call("POST", "/floating-ips", json={"project": student.project, "pool": pool["name"]})
    assert 400 <= over.status_code < 500 and "floating_ips" in over.json()["error"]["fields"], over.text
    usage = student.call("GET", f"/projects/{student.project}/usage", 200).json()
    assert usage["resources"]["floating_ips"] == {"limit": 1, "in_use": 1} and usage["mine"]["floating_ips"]["in_use"] == 1
    # The course is deleted: its floating IP goes back to the pool (the accounts service's event).
    admin.call("DELETE", f"/projects/{student.project}", 200)
    admin.wait_for("/floating-pools", lambda r: next(p for p in r.json() if p["id"] == pool["id"])["free"] == 6,
                   timeout=10)


def test_the_periodic_push_restores_lost_rules_and_removes_unowned_ones(stack, rpc):
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    student = approved_user(stack.url, admin, unique("sync"))
    guest = create(student, "synced")
    port, _ = rules_of(rpc, guest["ip"])
    assert port is not None
    stray = {"ip": "10.99.3.100", "ingress": [], "egress": []}
    rpc.hostagent_host1.apply_network_rules({"ports": [stray], "floating": []})   # what a lost host holds
    assert rules_of(rpc, guest["ip"])[0] is None
    synced = rpc.network.sync_network_rules()
    assert synced["hosts"]["host1"] is True
    applied = rpc.hostagent_host1.network_rules()
    assert rules_of(rpc, guest["ip"])[0] == port and stray not in applied["ports"]
    student.call("DELETE", f"/instances/{guest['id']}", 202)
