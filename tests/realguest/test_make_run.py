"""The README's first command: `make run` starts everything (with a real QEMU host by default),
Ctrl-C stops everything it started within 15 s however many guests run, a second Ctrl-C or a
`kill -9` of the launcher leaves nothing the next `make run` on the same data directory does not
clean up first, and the guests of the previous run are still there (shut off) after a restart."""
import glob
import os
import re
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

import libvirt
import pytest
import requests

from imagebuilder.bareboot import generate_ed25519_key, public_key_line
from labcloud.processes import alive, read_proc
from labcloud.qemu_host import LocalQemuHost
from labcloud.rabbit import free_port
from labcloud.stack import REPO_ROOT
from tests.e2e.api import ADMIN_PASSWORD, Api
from tests.realguest.conftest import IMAGE_CACHE

STOP_LIMIT_S = 15  # what the README promises for Ctrl-C
# Nine one-vCPU guests on this 2-core machine: the default CPU overcommit (4) allows eight.
MANY_GUESTS = 9


def processes_using(data_dir):
    """PIDs whose command line or environment mentions the data directory (zombies excluded)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if not alive(pid):
            continue
        blobs = [read_proc(pid, part) for part in ("cmdline", "environ")]
        if any(data_dir.encode() in blob for blob in blobs):
            found.append(int(pid))
    return found


def our_namespaces(data_dir):
    """Network namespaces of any host of this data dir."""
    prefix = LocalQemuHost(data_dir, "host1").netns.rsplit("-", 1)[0] + "-"
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in listed.splitlines() if line.startswith(prefix)]


def leftovers(data_dir):
    return {"processes": processes_using(data_dir), "namespaces": our_namespaces(data_dir)}


def nothing_left(data_dir):
    return leftovers(data_dir) == {"processes": [], "namespaces": []}


class MakeRun:
    """`make run` in its own process group, as a terminal runs it."""

    def __init__(self, data_dir, port, admin_password=None, extra_env=None):
        self.data_dir, self.port = data_dir, port
        env = dict(os.environ, LABCLOUD_DATA_DIR=data_dir, LABCLOUD_PORT=str(port),
                   LABCLOUD_IMAGE_CACHE=IMAGE_CACHE, **(extra_env or {}))
        env.pop("LABCLOUD_ADMIN_PASSWORD", None)
        env.pop("AMQP_URI", None)
        if admin_password:
            env["LABCLOUD_ADMIN_PASSWORD"] = admin_password
        self.proc = subprocess.Popen(["make", "-s", "run"], cwd=REPO_ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.text = ""

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def wait_running(self, timeout=300):  # the first run builds the tiny image
        output = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Ctrl-C stops everything" in line:
                break
        self.text = "".join(output)
        assert "labcloud is running" in self.text, self.text
        assert requests.get(f"{self.url}/healthz", timeout=5).status_code == 200
        return self

    def ctrl_c(self):
        os.killpg(self.proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does

    def launcher_pid(self):
        """The `labcloud run` python process under make (same session: make started it)."""
        for pid in filter(str.isdigit, os.listdir("/proc")):
            argv = read_proc(pid, "cmdline").split(b"\0")
            if os.getsid(int(pid)) == self.proc.pid and b"run" in argv and \
                    any(arg.endswith(b"/labcloud") for arg in argv):
                return int(pid)
        raise AssertionError("no labcloud run process under make")

    def wait_all_gone(self, since, limit=STOP_LIMIT_S):
        """Seconds from `since` until make has exited and nothing of the data dir is left."""
        deadline = since + max(limit, 60)  # wait longer than the limit, to report how long it took
        while time.monotonic() < deadline:
            if self.proc.poll() is not None and nothing_left(self.data_dir):
                break
            time.sleep(0.1)
        took = time.monotonic() - since
        self.text += self.proc.stdout.read() if self.proc.poll() is not None else ""
        assert nothing_left(self.data_dir), f"left after {took:.1f} s: {leftovers(self.data_dir)}"
        return took

    def stop(self):
        """Ctrl-C; returns the seconds until everything was gone."""
        signalled = time.monotonic()
        self.ctrl_c()
        took = self.wait_all_gone(signalled)
        assert "stopping labcloud" in self.text, self.text
        return took


def admin_api(run):
    return Api(run.url).login("admin", ADMIN_PASSWORD)


def create_instances(api, data_dir, count, prefix="vm"):
    """`count` instances of the smallest flavor from the tiny image, as a user of the API makes
    them; returns them once every one is running (its guest started)."""
    key = generate_ed25519_key(os.path.join(data_dir, f"{prefix}-key"))
    registered = api.call("POST", "/keys", 201, json={
        "name": f"{prefix}-key", "public_key": public_key_line(key, "admin@lab")}).json()
    flavor = min(api.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    image = next(i for i in api.call("GET", "/images", 200).json() if i["name"] == "tiny")
    ids = [api.call("POST", "/instances", 202, json={
        "name": f"{prefix}{i}", "flavor": flavor["id"], "image": image["id"],
        "key": registered["id"]}).json()["id"] for i in range(count)]
    return [api.wait_for(f"/instances/{iid}", lambda r: r.json()["state"] in ("running", "error"),
                         timeout=240, interval=0.5).json() for iid in ids]


def qemu_processes(data_dir):
    """QEMU processes running a disk of this data dir."""
    return [pid for pid in processes_using(data_dir)
            if read_proc(pid, "comm").startswith(b"qemu-system")]


def domains_on_host(data_dir, host="host1"):
    """{uuid: (state, disk paths)} as the host's libvirtd reports them, through its socket."""
    conn = libvirt.open(LocalQemuHost(data_dir, host).uri)
    try:
        found = {}
        for domain in conn.listAllDomains():
            disks = [source.get("file") for source in
                     ET.fromstring(domain.XMLDesc(0)).findall("./devices/disk/source")]
            found[domain.UUIDString()] = (domain.state()[0], disks)
        return found
    finally:
        conn.close()


def run_once(data_dir, port, expect_password):
    run = MakeRun(data_dir, port).wait_running()
    password = re.search(r"password '([^']+)'", run.text)
    assert bool(password) == expect_password, run.text
    if password:
        token = requests.post(f"{run.url}/api/v1/tokens", timeout=10,
                              json={"username": "admin", "password": password.group(1)})
        assert token.status_code == 201, token.text
    run.stop()


def test_make_run_starts_and_stops_everything_twice(tmp_path):
    data_dir = str(tmp_path / "var")
    port = free_port()
    run_once(data_dir, port, expect_password=True)   # first run prints the generated password
    assert processes_using(data_dir) == [], "Ctrl-C left processes behind"
    assert our_namespaces(data_dir) == [], "Ctrl-C left a network namespace behind"
    run_once(data_dir, port, expect_password=False)  # second run: same data, admin already there
    assert processes_using(data_dir) == []
    assert our_namespaces(data_dir) == []


@pytest.mark.timeout(900)  # several runs of the whole system, real guests
def test_ctrl_c_with_nine_guests_stops_everything_within_15_s(tmp_path):
    """Nine guests running (booting, the machine's two cores saturated): one Ctrl-C and within
    15 s no process, guest or namespace of the data dir is left. The guests' definitions, disks
    and console logs stay, and after a restart on the same data the host has them, shut off."""
    data_dir, port = str(tmp_path / "var"), free_port()
    extra = {"CPU_OVERCOMMIT": "5"}
    run = MakeRun(data_dir, port, ADMIN_PASSWORD, extra).wait_running()
    instances = create_instances(admin_api(run), data_dir, MANY_GUESTS)
    assert [i["state"] for i in instances] == ["running"] * MANY_GUESTS, instances
    assert len(qemu_processes(data_dir)) == MANY_GUESTS
    took = run.stop()
    print(f"\nCtrl-C with {MANY_GUESTS} guests running: everything gone after {took:.2f} s "
          f"({run.text.strip().splitlines()[-1]})")
    assert took <= STOP_LIMIT_S
    for instance in instances:  # kept (a guest caught early in its boot has written nothing yet)
        assert os.path.exists(os.path.join(data_dir, "consoles", instance["host"],
                                           f"{instance['id']}.log"))

    run = MakeRun(data_dir, port, ADMIN_PASSWORD, extra).wait_running()
    try:
        on_host = domains_on_host(data_dir)
        assert set(on_host) == {i["id"] for i in instances}
        for state, disks in on_host.values():
            assert state == libvirt.VIR_DOMAIN_SHUTOFF
            assert disks and all(os.path.exists(disk) for disk in disks)
        assert qemu_processes(data_dir) == []
    finally:
        took = run.stop()
    print(f"Ctrl-C with {MANY_GUESTS} guests shut off: everything gone after {took:.2f} s")


@pytest.mark.timeout(900)  # several runs of the whole system, real guests
def test_next_run_cleans_up_after_a_killed_launcher(tmp_path):
    """`kill -9` of the `labcloud run` process stops nothing: the private libvirtd (in its own
    session) and its guest run on. The next `make run` on the same data dir ends them first,
    starts cleanly, finds the guest defined, and leaves nothing after its own Ctrl-C."""
    data_dir, port = str(tmp_path / "var"), free_port()
    run = MakeRun(data_dir, port, ADMIN_PASSWORD).wait_running()
    [instance] = create_instances(admin_api(run), data_dir, 1)
    assert instance["state"] == "running", instance
    stale_guests = qemu_processes(data_dir)
    assert stale_guests
    os.kill(run.launcher_pid(), signal.SIGKILL)
    run.proc.wait(30)  # make reports its child's death and exits
    time.sleep(1)
    assert [pid for pid in stale_guests if alive(pid)] == stale_guests, "the guest should outlive it"

    started = time.monotonic()
    again = MakeRun(data_dir, port, ADMIN_PASSWORD).wait_running()
    print(f"\nstart after a killed launcher: {time.monotonic() - started:.1f} s")
    try:
        assert [pid for pid in stale_guests if alive(pid)] == []
        state, disks = domains_on_host(data_dir)[instance["id"]]
        assert state == libvirt.VIR_DOMAIN_SHUTOFF and all(os.path.exists(d) for d in disks)
    finally:
        took = again.stop()
    print(f"Ctrl-C of the next run: everything gone after {took:.2f} s")


@pytest.mark.timeout(900)  # several runs of the whole system, real guests
def test_second_ctrl_c_does_not_cut_the_stop_short(tmp_path):
    """A second Ctrl-C 0.5 s into the stop is ignored: the stop still ends everything within 15 s,
    and the next run on the same data dir starts and stops cleanly."""
    data_dir, port = str(tmp_path / "var"), free_port()
    run = MakeRun(data_dir, port, ADMIN_PASSWORD).wait_running()
    instances = create_instances(admin_api(run), data_dir, 2)
    assert [i["state"] for i in instances] == ["running"] * 2, instances
    signalled = time.monotonic()
    run.ctrl_c()
    time.sleep(0.5)
    run.ctrl_c()
    took = run.wait_all_gone(signalled)
    print(f"\ntwo Ctrl-Cs with 2 guests running: everything gone after {took:.2f} s")
    assert took <= STOP_LIMIT_S
    MakeRun(data_dir, port, ADMIN_PASSWORD).wait_running().stop()


@pytest.mark.timeout(900)  # several runs of the whole system, real guests
def test_instances_show_stopped_after_a_restart_and_start_again(tmp_path):
    """After Ctrl-C and a restart on the same data, the API shows each guest's true state (stopped:
    its guest was powered off), and starting it brings it back with SSH."""
    data_dir, port = str(tmp_path / "var"), free_port()
    run = MakeRun(data_dir, port, ADMIN_PASSWORD).wait_running()
    [instance] = create_instances(admin_api(run), data_dir, 1)
    assert instance["state"] == "running", instance
    run.stop()

    run = MakeRun(data_dir, port, ADMIN_PASSWORD).wait_running()
    try:
        api = admin_api(run)
        path = f"/instances/{instance['id']}"
        shown = api.wait_for(path, lambda r: r.json()["state"] != "running", timeout=60, interval=0.5)
        assert shown.json()["state"] == "stopped", shown.json()
        api.call("POST", f"{path}/start", 202)
        ready = api.wait_for(path, lambda r: r.json()["state"] == "error" or r.json()["ready"],
                             timeout=240, interval=0.5).json()
        assert ready["state"] == "running" and ready["ready"], ready
        assert len(qemu_processes(data_dir)) == 1
        assert glob.glob(os.path.join(data_dir, "consoles", "*", f"{instance['id']}.log"))
    finally:
        run.stop()
