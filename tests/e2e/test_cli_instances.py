"""The installed `labcloud` command, as a student uses it: sign up, get approved, log in, add a key,
then an instance's whole life (create, list, console, stop, start, reboot, delete) with --wait.
Errors are one line on stderr; a revoked token says how to go on. Run as subprocesses with their
own config directory."""
import json
import os
import subprocess
import sys
import tempfile
import uuid

import pytest

from imagebuilder.bareboot import generate_ed25519_key, public_key_line
from tests.e2e.api import ADMIN_PASSWORD, Api

LABCLOUD = os.path.join(os.path.dirname(sys.executable), "labcloud")
PASSWORD = "a student passphrase"


def run(home, *args, stdin=None, env=None, timeout=120):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LABCLOUD_")}
    environment.update(XDG_CONFIG_HOME=os.path.join(home, "config"), HOME=home, **(env or {}))
    return subprocess.run([LABCLOUD, *args], input=stdin, capture_output=True, text=True, timeout=timeout,
                          env=environment, stdin=None if stdin is not None else subprocess.DEVNULL)


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def one_error_line(result, *contains):
    assert result.returncode == 1, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for text in contains:
        assert text in lines[0], result.stderr
    return lines[0]


def last_line(text):
    return text.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def student(stack):
    """A user who signed up with the CLI, was approved by the admin, logged in with the CLI and
    added a key from a public key file: (home, username)."""
    home = tempfile.mkdtemp(prefix="labcloud-cli-instances-")
    username = f"st{uuid.uuid4().hex[:6]}"
    ok(run(home, "signup", username, "--email", f"{username}@lab.example", "--url", stack.url,
           "--password-stdin", stdin=PASSWORD + "\n"))
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    project = admin.call("POST", "/projects", 201, json={"name": f"p-{username}"}).json()["id"]
    user_id = next(u["id"] for u in admin.call("GET", "/users", 200).json() if u["username"] == username)
    admin.call("POST", f"/users/{user_id}/approve", 200, json={"project": project})
    ok(run(home, "login", "--url", stack.url, "--username", username, "--password-stdin", stdin=PASSWORD + "\n"))
    public = os.path.join(home, "id_ed25519.pub")
    with open(public, "w") as fh:
        fh.write(public_key_line(generate_ed25519_key(), f"{username}@lab") + "\n")
    ok(run(home, "key", "add", "laptop", public))
    return home, username


def test_version(student):
    home, _ = student
    assert "labcloud" in ok(run(home, "--version"))


def test_an_instance_life_from_the_command_line(stack, student):
    home, _ = student
    flavors = json.loads(ok(run(home, "flavor", "list", "--json")))
    flavor = min(flavors, key=lambda f: f["memory_mib"])["name"]
    image = json.loads(ok(run(home, "image", "list", "--json")))[0]["name"]

    created = run(home, "instance", "create", "vm1", "--flavor", flavor, "--image", image, "--key", "laptop",
                  "--wait")
    assert last_line(ok(created)).startswith("vm1: running"), created.stdout

    listed = json.loads(ok(run(home, "instance", "list", "--json")))
    assert [(i["name"], i["state"]) for i in listed] == [("vm1", "running")], listed
    assert ok(run(home, "instance", "list", "-f", "value", "-c", "name", "-c", "state")).strip() == "vm1 running"
    ok(run(home, "instance", "console", "vm1"))

    assert last_line(ok(run(home, "instance", "stop", "vm1", "--wait"))) == "vm1: stopped"
    assert last_line(ok(run(home, "instance", "start", "vm1", "--wait"))).startswith("vm1: running")
    assert last_line(ok(run(home, "instance", "reboot", "vm1", "--wait"))).startswith("vm1: running")

    deleted = run(home, "instance", "delete", "vm1", "--wait")
    assert last_line(ok(deleted)) == "vm1: deleted", deleted.stdout
    assert "vm1" not in [i["name"] for i in json.loads(ok(run(home, "instance", "list", "--json")))]


def test_a_file_that_is_not_a_public_key_is_one_line_naming_the_field(student):
    home, _ = student
    bad = os.path.join(home, "not-a-key.pub")
    with open(bad, "w") as fh:
        fh.write("this is not a public key\n")
    one_error_line(run(home, "key", "add", "bad", bad), "public_key")


def test_an_unknown_flavor_is_one_line(student):
    home, _ = student
    one_error_line(run(home, "instance", "create", "vm2", "--flavor", "nope", "--image", "x", "--key", "laptop"),
                   "no flavor named nope")


def test_a_revoked_token_says_the_session_has_ended(stack, student):
    home, _ = student
    ok(run(home, "instance", "list"))  # the stored token works
    with open(os.path.join(home, "config", "labcloud", "config.json")) as fh:
        token = json.load(fh)["token"]
    revoked = Api(stack.url, token).call("DELETE", "/tokens/current")
    assert revoked.status_code < 300, revoked.text
    assert Api(stack.url, token).call("GET", "/instances").status_code == 401
    one_error_line(run(home, "instance", "list"), "your session has ended", "labcloud login")
