"""Security groups and a floating IP on real QEMU guests (the shared QEMU stack, one host): two
courses' guests on one host reach each other only where a rule allows it (their default groups let
SSH in and nothing else), a rule added through the API opens a port live and its removal closes it,
and a floating IP associated with a guest takes an SSH login made inside the host's namespace to
that guest, until it is disassociated. Afterwards the host's table holds nothing of them."""
import time

import paramiko
import pytest

from common import netns
from hostagent import netfilter
from tests.realguest.guests import SSHClient, student_with_key, tiny_guests
from tests.realguest.test_real_guest import run, ssh, wait_ready

PORT = 8080
POOL_CIDR = "198.51.100.0/29"


@pytest.fixture(scope="module")
def courses(qemu_stack):
    """(admin, [(api, key, guest) of course A, of course B]): one guest each, on the one host."""
    made = []
    for name in ("ann", "bob"):
        admin, api, key, key_id = student_with_key(qemu_stack.url, f"net-{name}")
        [guest] = tiny_guests(api, key_id, [f"{name}-vm"], wait_ready)
        made.append((api, key, guest))
    yield admin, made
    for api, _key, guest in made:
        api.call("DELETE", f"/instances/{guest['id']}")
    for api, _key, guest in made:
        api.wait_for(f"/instances/{guest['id']}", lambda r: r.status_code == 404, timeout=120)


def connects(client, ip, port):
    """Whether the guest behind `client` opens a TCP connection to ip:port and gets its first bytes
    (busybox nc, 2 s)."""
    return run(client, f"nc -w 2 {ip} {port} </dev/null 2>/dev/null | head -c 5") != ""


def serve_once(client, text):
    """The guest answers one TCP connection on PORT with `text` (in the background)."""
    run(client, f"(echo {text} | nc -l -p {PORT} >/dev/null 2>&1 &) ; sleep 0.2")


def test_two_courses_reach_each_other_only_where_a_rule_allows(qemu_stack, courses):
    admin, [(api_a, key_a, a), (api_b, key_b, b)] = courses
    with ssh(a, key_a) as in_a, ssh(b, key_b) as in_b:
        assert connects(in_b, a["ip"], 22)            # the default group lets SSH in, from anywhere
        serve_once(in_a, "hello")
        assert not connects(in_b, a["ip"], PORT)      # nothing else between the two courses
        [default_a] = api_a.call("GET", f"/projects/{api_a.project}/security-groups", 200).json()
        changed = admin.call("POST", f"/security-groups/{default_a['id']}/rules", 201, json={
            "protocol": "tcp", "port_min": PORT, "cidr": f"{b['ip']}/32"}).json()
        rule = next(r for r in changed["rules"] if r["port_min"] == PORT)
        assert run(in_b, f"nc -w 2 {a['ip']} {PORT} </dev/null") == "hello"   # live, no restart
        admin.call("DELETE", f"/security-groups/{default_a['id']}/rules/{rule['id']}", 200)
        serve_once(in_a, "again")
        assert not connects(in_b, a["ip"], PORT)
        assert connects(in_a, b["ip"], 22)            # and the other way, SSH only


def test_a_floating_ip_takes_an_ssh_login_to_its_guest(qemu_stack, courses):
    admin, [(api_a, key_a, a), _b] = courses
    host = qemu_stack.qemu_hosts[a["host"]]
    pool = admin.call("POST", "/floating-pools", 201, json={"name": "public", "cidr": POOL_CIDR}).json()
    fip = api_a.call("POST", "/floating-ips", 201, json={"project": api_a.project}).json()
    assert fip["ip"] == "198.51.100.1"
    api_a.call("POST", f"/floating-ips/{fip['id']}/associate", 200, json={"instance": a["id"]})
    sock = netns.connect_in_netns(host.netns, (fip["ip"], 22), timeout=10)   # inside the host's namespace
    client = SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(fip["ip"], sock=sock, username="root", pkey=key_a, timeout=20, banner_timeout=20,
                       auth_timeout=20, look_for_keys=False, allow_agent=False)
        assert run(client, "hostname") == a["name"]
        assert run(client, "ip -4 addr show eth0 | grep -o 'inet [0-9.]*'") == f"inet {a['ip']}"
    finally:
        client.close()
    api_a.call("POST", f"/floating-ips/{fip['id']}/disassociate", 200)
    with pytest.raises(OSError):
        netns.connect_in_netns(host.netns, (fip["ip"], 22), timeout=3).close()
    api_a.call("DELETE", f"/floating-ips/{fip['id']}", 200)
    admin.call("DELETE", f"/floating-pools/{pool['id']}", 200)
    assert fip["ip"] not in netfilter.local_routes(host.netns)


def test_nothing_of_them_is_left_in_the_hosts_table(qemu_stack, courses):
    admin, made = courses
    host = qemu_stack.qemu_hosts[made[0][2]["host"]]
    ips = [guest["ip"] for _api, _key, guest in made]
    table = str(netfilter.table(host.netns))
    assert all(ip in table for ip in ips)             # both filtered while they run
    for api, _key, guest in made:
        api.call("DELETE", f"/instances/{guest['id']}", 202)
        api.wait_for(f"/instances/{guest['id']}", lambda r: r.status_code == 404, timeout=120)
    deadline = time.monotonic() + 10
    while any(ip in str(netfilter.table(host.netns)) for ip in ips) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(ip in str(netfilter.table(host.netns)) for ip in ips), netfilter.table(host.netns)
