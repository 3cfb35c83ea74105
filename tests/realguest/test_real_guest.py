"""A real guest, end to end: create from the tiny image with a user's key and user-data, SSH in
through the instance's endpoint, console, metrics, stop/start, delete, and nothing left behind; and
the same through the installed `labcloud` command only (on the package's shared QEMU stack)."""
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time

import libvirt
import paramiko
import pytest

from imagebuilder.bareboot import generate_ed25519_key, public_key_line
from common import netns
from tests.e2e.api import ADMIN_PASSWORD, Api
from tests.realguest.guests import SSHClient

USER_DATA = "#!/bin/sh\necho user-data-ran-$(hostname) > /root/user-data.out\n"


@pytest.fixture(scope="module")
def user(qemu_stack):
    anon = Api(qemu_stack.url)
    admin = anon.login("admin", ADMIN_PASSWORD)
    made = anon.call("POST", "/users", 201, json={"username": "student", "email": "s@lab.example",
                                                 "password": "an enrolled passphrase"}).json()
    project = admin.call("POST", "/projects", 201, json={"name": "students"}).json()
    admin.call("POST", f"/users/{made['id']}/approve", 200, json={"project": project["id"]})
    api = anon.login("student", "an enrolled passphrase")
    key = generate_ed25519_key(os.path.join(qemu_stack.data_dir, "student-key"))
    registered = api.call("POST", "/keys", 201, json={
        "name": "laptop", "public_key": public_key_line(key, "student@lab")}).json()
    return api, key, registered


def ssh(instance, key):
    client = SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(instance["ssh"]["host"], port=instance["ssh"]["port"], username="root", pkey=key,
                   timeout=20, banner_timeout=20, auth_timeout=20, look_for_keys=False, allow_agent=False)
    client.reopen = lambda: ssh(instance, key)   # for guest_log, when this session breaks
    return client


def run(client, command):
    try:
        _, out, err = client.exec_command(command, timeout=30)
        return out.read().decode().strip()
    except paramiko.SSHException as exc:
        # A session that broke (rarely, in CI: the guest closed it, its SSH server logging nothing)
        # says what the guest's kernel and SSH server logged last.
        raise paramiko.SSHException(f"{exc}; the guest's logs:\n{guest_log(client)}") from exc


def guest_log(client):
    """The end of the guest's kernel log and dropbear log, through a new session (a session made by
    ssh() knows how to open another), or why they could not be read."""
    reopen = getattr(client, "reopen", None)
    if reopen is None:
        return "(not a session of ssh(): no way to open another)"
    try:
        with reopen() as fresh:
            _, out, _ = fresh.exec_command("dmesg | tail -n 40; echo ---; tail -n 20 /var/log/dropbear.log; "
                                           "echo ---; free", timeout=30)
            return out.read().decode(errors="replace")
    except Exception as exc:  # noqa: BLE001  (the explanation must not hide the failure)
        return f"(unreadable: {exc!r})"


def wait_ready(api, instance_id, timeout=240):
    return api.wait_for(f"/instances/{instance_id}",
                        lambda r: r.json()["state"] == "error" or (r.json()["state"] == "running" and r.json()["ready"]),
                        timeout=timeout, interval=0.5).json()


def test_real_guest_lifecycle(qemu_stack, user):
    api, key, registered = user
    flavor = min(api.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    image = next(i for i in api.call("GET", "/images", 200).json() if i["name"] == "tiny")
    created = api.call("POST", "/instances", 202, json={
        "name": "lab1", "flavor": flavor["id"], "image": image["id"], "key": registered["id"],
        "user_data": USER_DATA}).json()
    iid = created["id"]

    inst = wait_ready(api, iid)
    assert inst["state"] == "running" and inst["ready"], inst
    assert inst["ssh"]["host"] == "127.0.0.1" and inst["ssh_ready_seconds"] > 0
    print(f"\nboot to SSH through labcloud: {inst['ssh_ready_seconds']} s")

    with ssh(inst, key) as client:
        assert run(client, "hostname") == "lab1"
        assert inst["ip"] in run(client, "ip -4 addr show eth0")
        assert run(client, "cat /root/user-data.out") == "user-data-ran-lab1"
        assert run(client, "timeout 5 wget -qO- http://169.254.169.254/latest/meta-data/instance-id") == iid

    # `labcloud ssh NAME`, as a user on this machine runs it (the system's ssh client, our key file)
    key_file = os.path.join(qemu_stack.data_dir, "student-key")  # written by the `user` fixture
    cli = subprocess.run([os.path.join(os.path.dirname(sys.executable), "labcloud"), "ssh", "lab1",
                          "-i", key_file, "cat", "/etc/hostname"],
                         env=dict(os.environ, LABCLOUD_URL=qemu_stack.url,
                                  LABCLOUD_TOKEN=api.http.headers["Authorization"][len("Bearer "):]),
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert cli.returncode == 0 and cli.stdout.strip() == "lab1", cli.stderr

    console = api.call("GET", f"/instances/{iid}/console", 200).json()["output"]
    assert f"labcloud: ssh ready {inst['ip']}" in console  # the tiny image's /init markers

    def cpu_seen(resp):
        series = resp.json().get("series", {}) if resp.status_code == 200 else {}
        return any(v for _, v in series.get("cpu_percent", []) if v) and \
            any(v for _, v in series.get("net_rx_bps", []) if v)
    api.wait_for(f"/instances/{iid}/metrics?seconds=300", cpu_seen, timeout=60, interval=1)

    # stop (ACPI) and start again: SSH comes back
    assert api.call("POST", f"/instances/{iid}/stop", 202).json()["state"] == "stopping"
    api.wait_for(f"/instances/{iid}", lambda r: r.json()["state"] == "stopped", timeout=60, interval=0.5)
    api.call("POST", f"/instances/{iid}/start", 202)
    inst = wait_ready(api, iid)
    assert inst["state"] == "running" and inst["ready"]
    with ssh(inst, key) as client:
        assert run(client, "hostname") == "lab1"

    # delete: no domain, disk, DHCP entry or forwarded port left on the host
    host = qemu_stack.qemu_hosts[inst["host"]]
    api.call("DELETE", f"/instances/{iid}", 202)
    api.wait_for(f"/instances/{iid}", lambda r: r.status_code == 404,
                 timeout=60, interval=0.5)
    conn = libvirt.open(host.uri)
    try:
        assert [d.UUIDString() for d in conn.listAllDomains()] == []
        network_xml = conn.networkLookupByName(host.network_name).XMLDesc()
        assert inst["mac"] not in network_xml
        pool_files = [v.name() for p in conn.listAllStoragePools() for v in p.listAllVolumes()]
        assert not any(iid in name for name in pool_files)
    finally:
        conn.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", inst["ssh"]["port"]), timeout=2).close()
    links = netns.run(host.netns, ["ip", "-o", "link", "show"]).stdout
    assert "vnet" not in links, links  # the guest's tap (libvirt names them vnetN) is gone
    assert not os.path.exists(os.path.join(qemu_stack.data_dir, "consoles", inst["host"], f"{iid}.log"))


def test_disk_image_made_elsewhere_boots_with_dhcp_and_metadata(qemu_stack, user, image_builds):
    """An image with its own bootloader (the builder's --disk-image, standing in for a cloud image
    we cannot download here): registered with `labcloud image register --disk`, booted from its
    disk (no kernel from the host), addressed by the host's DHCP entry, named and keyed by the
    metadata service. The image is the session's build with its disk image (built for real once,
    tests/conftest.py ImageBuilds), copied here: the build below finds it up to date."""
    from imagebuilder.build import build
    from tests.realguest.conftest import IMAGE_CACHE
    api, key, registered = user
    image_builds.copy_to(qemu_stack.data_dir, "clouddisk", disk_image=True)
    manifest = build("clouddisk", data_dir=qemu_stack.data_dir, cache_dir=IMAGE_CACHE, disk_image=True,
                     log=lambda *_: None)
    disk = os.path.join(qemu_stack.data_dir, "images", "clouddisk", manifest["files"]["disk_image"]["path"])
    admin = Api(qemu_stack.url).login("admin", ADMIN_PASSWORD)
    cli = subprocess.run([os.path.join(os.path.dirname(sys.executable), "labcloud"), "image", "register",
                          "clouddisk", "--disk", disk, "--description", "own bootloader"],
                         env=dict(os.environ, LABCLOUD_URL=qemu_stack.url, LABCLOUD_TOKEN=admin.token),
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    image = next(i for i in api.call("GET", "/images", 200).json() if i["name"] == "clouddisk")
    assert image["boot"] == "disk"

    flavor = min(api.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    created = api.call("POST", "/instances", 202, json={
        "name": "cloudy", "flavor": flavor["id"], "image": image["id"], "key": registered["id"],
        "user_data": USER_DATA}).json()
    inst = wait_ready(api, created["id"])
    assert inst["state"] == "running" and inst["ready"], inst
    print(f"\ndisk image boot to SSH through labcloud: {inst['ssh_ready_seconds']} s")
    with ssh(inst, key) as client:
        assert "ip=" not in run(client, "cat /proc/cmdline")  # nothing told it its address...
        assert inst["ip"] in run(client, "ip -4 addr show eth0")  # ...DHCP did
        assert run(client, "hostname") == "cloudy"
        assert run(client, "cat /root/user-data.out") == "user-data-ran-cloudy"
        assert "/dev/vda2 /data ext4" in run(client, "cat /proc/mounts")
    console = api.call("GET", f"/instances/{inst['id']}/console", 200).json()["output"]
    assert "SYSLINUX" in console  # its own bootloader ran

    host = qemu_stack.qemu_hosts[inst["host"]]
    api.call("DELETE", f"/instances/{inst['id']}", 202)
    api.wait_for(f"/instances/{inst['id']}", lambda r: r.status_code == 404,
                 timeout=60, interval=0.5)
    conn = libvirt.open(host.uri)
    try:
        assert inst["mac"] not in conn.networkLookupByName(host.network_name).XMLDesc()
    finally:
        conn.close()


# ----- the same through the installed labcloud command only -----

LABCLOUD = os.path.join(os.path.dirname(sys.executable), "labcloud")
CLI_PASSWORD = "a real guest passphrase"


def cli_run(home, *args, timeout=120):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LABCLOUD_")}
    environment.update(XDG_CONFIG_HOME=os.path.join(home, "config"), HOME=home)
    return subprocess.run([LABCLOUD, *args], capture_output=True, text=True, timeout=timeout, env=environment,
                          stdin=subprocess.DEVNULL)


def cli_ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_a_real_guest_from_the_command_line(qemu_stack):
    home = tempfile.mkdtemp(prefix="labcloud-cli-real-")
    anon = Api(qemu_stack.url)
    admin = anon.login("admin", ADMIN_PASSWORD)
    made = anon.call("POST", "/users", 201, json={"username": "clireal", "email": "clireal@lab.example",
                                                 "password": CLI_PASSWORD}).json()
    project = admin.call("POST", "/projects", 201, json={"name": "cli-real"}).json()
    admin.call("POST", f"/users/{made['id']}/approve", 200, json={"project": project["id"]})
    login = subprocess.run([LABCLOUD, "login", "--url", qemu_stack.url, "--username", "clireal", "--password-stdin"],
                           input=CLI_PASSWORD + "\n", capture_output=True, text=True, timeout=60,
                           env=dict({k: v for k, v in os.environ.items() if not k.startswith("LABCLOUD_")},
                                    XDG_CONFIG_HOME=os.path.join(home, "config"), HOME=home))
    cli_ok(login)

    key_file = os.path.join(home, "k1")
    cli_ok(cli_run(home, "key", "generate", "k1", "--output", key_file))
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600

    flavor = min(json.loads(cli_ok(cli_run(home, "flavor", "list", "--json"))), key=lambda f: f["memory_mib"])["name"]
    created = cli_run(home, "instance", "create", "real1", "--flavor", flavor, "--image", "tiny", "--key", "k1",
                  "--wait", timeout=600)
    assert cli_ok(created).strip().splitlines()[-1].startswith("real1: running"), created.stdout

    deadline = time.monotonic() + 240
    ready = ""
    while time.monotonic() < deadline:
        ready = cli_ok(cli_run(home, "instance", "show", "real1", "-f", "value", "-c", "ready")).strip()
        if ready == "True":
            break
        time.sleep(2)
    assert ready == "True", cli_ok(cli_run(home, "instance", "show", "real1"))

    ssh = cli_run(home, "instance", "ssh", "real1", "-i", key_file, "--", "hostname", timeout=60)
    assert ssh.returncode == 0 and ssh.stdout.strip() == "real1", f"{ssh.returncode}\n{ssh.stdout}\n{ssh.stderr}"

    deleted = cli_run(home, "instance", "delete", "real1", "--wait", timeout=300)
    assert cli_ok(deleted).strip().splitlines()[-1] == "real1: deleted", deleted.stdout
    assert "real1" not in [i["name"] for i in json.loads(cli_ok(cli_run(home, "instance", "list", "--json")))]
