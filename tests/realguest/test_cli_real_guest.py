"""A real guest through the installed `labcloud` command only: log in, generate a key, create from
the tiny image with --wait, wait until SSH answers, `labcloud instance ssh NAME -- hostname`, delete."""
import json
import os
import stat
import subprocess
import sys
import tempfile
import time

from tests.e2e.api import ADMIN_PASSWORD, Api

LABCLOUD = os.path.join(os.path.dirname(sys.executable), "labcloud")
PASSWORD = "a real guest passphrase"


def run(home, *args, timeout=120):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LABCLOUD_")}
    environment.update(XDG_CONFIG_HOME=os.path.join(home, "config"), HOME=home)
    return subprocess.run([LABCLOUD, *args], capture_output=True, text=True, timeout=timeout, env=environment,
                          stdin=subprocess.DEVNULL)


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_a_real_guest_from_the_command_line(qemu_stack):
    home = tempfile.mkdtemp(prefix="labcloud-cli-real-")
    anon = Api(qemu_stack.url)
    admin = anon.login("admin", ADMIN_PASSWORD)
    made = anon.call("POST", "/users", 201, json={"username": "clireal", "email": "clireal@lab.example",
                                                 "password": PASSWORD}).json()
    project = admin.call("POST", "/projects", 201, json={"name": "cli-real"}).json()
    admin.call("POST", f"/users/{made['id']}/approve", 200, json={"project": project["id"]})
    login = subprocess.run([LABCLOUD, "login", "--url", qemu_stack.url, "--username", "clireal", "--password-stdin"],
                           input=PASSWORD + "\n", capture_output=True, text=True, timeout=60,
                           env=dict({k: v for k, v in os.environ.items() if not k.startswith("LABCLOUD_")},
                                    XDG_CONFIG_HOME=os.path.join(home, "config"), HOME=home))
    ok(login)

    key_file = os.path.join(home, "k1")
    ok(run(home, "key", "generate", "k1", "--output", key_file))
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600

    flavor = min(json.loads(ok(run(home, "flavor", "list", "--json"))), key=lambda f: f["memory_mib"])["name"]
    created = run(home, "instance", "create", "real1", "--flavor", flavor, "--image", "tiny", "--key", "k1",
                  "--wait", timeout=600)
    assert ok(created).strip().splitlines()[-1].startswith("real1: running"), created.stdout

    deadline = time.monotonic() + 240
    ready = ""
    while time.monotonic() < deadline:
        ready = ok(run(home, "instance", "show", "real1", "-f", "value", "-c", "ready")).strip()
        if ready == "True":
            break
        time.sleep(2)
    assert ready == "True", ok(run(home, "instance", "show", "real1"))

    ssh = run(home, "instance", "ssh", "real1", "-i", key_file, "--", "hostname", timeout=60)
    assert ssh.returncode == 0 and ssh.stdout.strip() == "real1", f"{ssh.returncode}\n{ssh.stdout}\n{ssh.stderr}"

    deleted = run(home, "instance", "delete", "real1", "--wait", timeout=300)
    assert ok(deleted).strip().splitlines()[-1] == "real1: deleted", deleted.stdout
    assert "real1" not in [i["name"] for i in json.loads(ok(run(home, "instance", "list", "--json")))]
