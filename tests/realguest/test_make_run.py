"""The README's first command: `make run` starts everything (with a real QEMU host by default),
Ctrl-C stops everything it started, and running it again on the same data directory works."""
import os
import re
import signal
import subprocess
import time

import requests

from labcloud.rabbit import free_port
from labcloud.stack import REPO_ROOT
from tests.realguest.conftest import IMAGE_CACHE


def processes_using(data_dir):
    """PIDs whose command line or environment mentions the data directory (zombies excluded)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            blobs = [open(f"/proc/{pid}/{part}", "rb").read() for part in ("cmdline", "environ")]
        except OSError:
            continue
        if any(data_dir.encode() in blob for blob in blobs):
            found.append(int(pid))
    return found


def run_once(data_dir, port, expect_password):
    env = dict(os.environ, LABCLOUD_DATA_DIR=data_dir, LABCLOUD_PORT=str(port),
               LABCLOUD_IMAGE_CACHE=IMAGE_CACHE)
    env.pop("LABCLOUD_ADMIN_PASSWORD", None)
    env.pop("AMQP_URI", None)
    proc = subprocess.Popen(["make", "-s", "run"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output = []
    try:
        deadline = time.monotonic() + 300  # the first run builds the tiny image
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Ctrl-C stops everything" in line:
                break
        text = "".join(output)
        assert "labcloud is running" in text, text
        password = re.search(r"password '([^']+)'", text)
        assert bool(password) == expect_password, text
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        if password:
            token = requests.post(f"http://127.0.0.1:{port}/api/v1/tokens", timeout=10,
                                  json={"username": "admin", "password": password.group(1)})
            assert token.status_code == 201, token.text
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        proc.wait(60)
    rest = proc.stdout.read()
    assert "stopping labcloud" in rest
    return text


def test_make_run_starts_and_stops_everything_twice(tmp_path):
    data_dir = str(tmp_path / "var")
    port = free_port()
    run_once(data_dir, port, expect_password=True)   # first run prints the generated password
    time.sleep(1)
    assert processes_using(data_dir) == [], "Ctrl-C left processes behind"
    assert our_namespaces(data_dir) == [], "Ctrl-C left a network namespace behind"
    run_once(data_dir, port, expect_password=False)  # second run: same data, admin already there
    time.sleep(1)
    assert processes_using(data_dir) == []
    assert our_namespaces(data_dir) == []


def our_namespaces(data_dir):
    from labcloud.qemu_host import LocalQemuHost
    prefix = LocalQemuHost(data_dir, "host1").netns
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line for line in listed.splitlines() if line.split()[0] == prefix] if listed else []
