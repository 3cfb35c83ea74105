"""The README's first command: `make run` starts everything (with a real QEMU host by default),
prints the generated admin password the first time, Ctrl-C stops everything it started within
15 s however many guests run, a second Ctrl-C or a `kill -9` of the launcher leaves nothing the
next `make run` on the same data directory does not clean up first, and the guests of the previous
run are still there (shut off) after a restart and start again. One test, four runs on one data
directory: each start of the whole system is expensive, so every run checks several of these."""
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
from tests.e2e.api import Api
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


def admin_api(run, password):
    return Api(run.url).login("admin", password)


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


def start_instance(api, instance, until_ready=False):
    """Starts a stopped instance; returns it once running (and, if asked, ready: SSH answers)."""
    path = f"/instances/{instance['id']}"
    api.call("POST", f"{path}/start", 202)
    if until_ready:
        done = lambda r: r.json()["state"] == "error" or r.json()["ready"]  # noqa: E731
    else:
        done = lambda r: r.json()["state"] in ("running", "error")  # noqa: E731
    return api.wait_for(path, done, timeout=240, interval=0.5).json()


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


def printed_password(run):
    found = re.search(r"password '([^']+)'", run.text)
    return found.group(1) if found else None


@pytest.fixture
def runs():
    """The `make run`s of a test; one a failed assertion left running gets a Ctrl-C."""
    started = []
    yield started
    for run in started:
        if run.proc.poll() is None:
            run.ctrl_c()
            try:
                run.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(run.proc.pid, signal.SIGKILL)


@pytest.mark.timeout(900)  # four runs of the whole system, real guests
def test_four_make_runs_on_one_data_dir(tmp_path, runs):
    """Four `make run`s one after the other on one data directory (a start and stop of the whole
    system takes tens of seconds, so each run serves several of the README's promises):

    1. First run (no LABCLOUD_ADMIN_PASSWORD): it prints the generated admin password, which logs
       in. Nine guests running (booting, the machine's two cores saturated): one Ctrl-C and within
       15 s no process, guest or network namespace of the data dir is left; the guests' console
       logs stay.
    2. Second run: no password printed (the admin is already there). The host has the nine guests
       defined, shut off, with their disks, and no QEMU runs; the API shows each instance stopped
       (its guest was powered off), and starting one brings it back with SSH. With two guests
       running, a second Ctrl-C 0.5 s into the stop is ignored: the stop still ends everything
       within 15 s.
    3. Third run: the next run after the double Ctrl-C starts cleanly. A guest is started, then
       `kill -9` of the `labcloud run` process stops nothing: make exits and the guest runs on.
    4. Fourth run: it ends the killed launcher's leftovers first, starts cleanly, finds the guest
       defined and shut off with its disks, and leaves nothing after its own Ctrl-C."""
    data_dir, port = str(tmp_path / "var"), free_port()

    def make_run():
        run = MakeRun(data_dir, port, extra_env={"CPU_OVERCOMMIT": "5"})
        runs.append(run)
        return run.wait_running()

    # 1. The first run prints the password; one Ctrl-C with nine guests running.
    run = make_run()
    password = printed_password(run)
    assert password, run.text
    api = admin_api(run, password)  # POST /tokens with the printed password: 201
    instances = create_instances(api, data_dir, MANY_GUESTS)
    assert [i["state"] for i in instances] == ["running"] * MANY_GUESTS, instances
    assert len(qemu_processes(data_dir)) == MANY_GUESTS
    took = run.stop()
    print(f"\nCtrl-C with {MANY_GUESTS} guests running: everything gone after {took:.2f} s "
          f"({run.text.strip().splitlines()[-1]})")
    assert took <= STOP_LIMIT_S
    assert processes_using(data_dir) == [], "Ctrl-C left processes behind"
    assert our_namespaces(data_dir) == [], "Ctrl-C left a network namespace behind"
    for instance in instances:  # kept (a guest caught early in its boot has written nothing yet)
        assert os.path.exists(os.path.join(data_dir, "consoles", instance["host"],
                                           f"{instance['id']}.log"))

    # 2. The second run: no password; the guests are there, shut off, and start again with SSH;
    #    then two Ctrl-Cs with two guests running.
    run = make_run()
    assert printed_password(run) is None, run.text
    on_host = domains_on_host(data_dir)
    assert set(on_host) == {i["id"] for i in instances}
    for state, disks in on_host.values():
        assert state == libvirt.VIR_DOMAIN_SHUTOFF
        assert disks and all(os.path.exists(disk) for disk in disks)
    assert qemu_processes(data_dir) == []
    api = admin_api(run, password)
    for instance in instances:
        shown = api.wait_for(f"/instances/{instance['id']}",
                             lambda r: r.json()["state"] != "running", timeout=60, interval=0.5)
        assert shown.json()["state"] == "stopped", shown.json()
    ready = start_instance(api, instances[0], until_ready=True)
    assert ready["state"] == "running" and ready["ready"], ready
    assert len(qemu_processes(data_dir)) == 1
    assert glob.glob(os.path.join(data_dir, "consoles", "*", f"{instances[0]['id']}.log"))
    second = start_instance(api, instances[1])
    assert second["state"] == "running", second
    assert len(qemu_processes(data_dir)) == 2
    signalled = time.monotonic()
    run.ctrl_c()
    time.sleep(0.5)
    run.ctrl_c()
    took = run.wait_all_gone(signalled)
    print(f"two Ctrl-Cs with 2 guests running: everything gone after {took:.2f} s")
    assert took <= STOP_LIMIT_S
    assert "stopping labcloud" in run.text, run.text
    assert processes_using(data_dir) == []
    assert our_namespaces(data_dir) == []

    # 3. The run after the double Ctrl-C starts; its launcher is killed with a guest running.
    run = make_run()
    assert printed_password(run) is None, run.text
    instance = start_instance(admin_api(run, password), instances[2])
    assert instance["state"] == "running", instance
    stale_guests = qemu_processes(data_dir)
    assert stale_guests
    os.kill(run.launcher_pid(), signal.SIGKILL)
    run.proc.wait(30)  # make reports its child's death and exits
    time.sleep(1)
    assert [pid for pid in stale_guests if alive(pid)] == stale_guests, "the guest should outlive it"

    # 4. The next run ends the leftovers first and stops cleanly itself.
    started = time.monotonic()
    run = make_run()
    print(f"start after a killed launcher: {time.monotonic() - started:.1f} s")
    try:
        assert printed_password(run) is None, run.text
        assert [pid for pid in stale_guests if alive(pid)] == []
        state, disks = domains_on_host(data_dir)[instance["id"]]
        assert state == libvirt.VIR_DOMAIN_SHUTOFF and all(os.path.exists(d) for d in disks)
    finally:
        took = run.stop()
    print(f"Ctrl-C of the next run ({MANY_GUESTS} guests shut off): everything gone after "
          f"{took:.2f} s")
    assert nothing_left(data_dir)
