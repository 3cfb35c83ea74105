"""The installed `labcloud` command against a running system, as a teacher and an admin would use
it for a course: log in, make a course with a quota, import the class list, read the usage, make a
key, read the audit log. The command is run as a subprocess with its own config directory."""
import json
import os
import stat
import subprocess
import sys
import tempfile
import uuid

import pytest

from tests.e2e.api import ADMIN_PASSWORD, Api

LABCLOUD = os.path.join(os.path.dirname(sys.executable), "labcloud")


@pytest.fixture(scope="module")
def home():
    return tempfile.mkdtemp(prefix="labcloud-cli-home-")


def run(home, *args, stdin=None, env=None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LABCLOUD_")}
    environment.update(XDG_CONFIG_HOME=os.path.join(home, "config"), HOME=home, **(env or {}))
    return subprocess.run([LABCLOUD, *args], input=stdin, capture_output=True, text=True, timeout=60,
                          env=environment)


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_a_course_from_the_command_line(stack, home):
    assert "labcloud" in ok(run(home, "--version"))
    ok(run(home, "login", "--url", stack.url, "--username", "admin", "--password-stdin",
           stdin=ADMIN_PASSWORD + "\n"))
    config = os.path.join(home, "config", "labcloud", "config.json")
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600

    course = f"os-{uuid.uuid4().hex[:6]}"
    made = json.loads(ok(run(home, "project", "create", course, "--instances", "4", "--vcpus", "8", "--json")))
    assert made["name"] == course and made["quota"]["instances"] == 4

    students = os.path.join(home, "students.csv")
    names = [f"cli{uuid.uuid4().hex[:6]}" for _ in range(3)]
    with open(students, "w") as fh:
        fh.write("username,email,full_name,course\n")
        fh.writelines(f"{n},{n}@lab.example,Student {i},{course}\n" for i, n in enumerate(names))
    report = json.loads(ok(run(home, "user", "import", students, "--json")))
    assert report["created"] == 3 and [r["username"] for r in report["rows"]] == names
    members = json.loads(ok(run(home, "project", "members", course, "--json")))
    assert sorted(m["username"] for m in members) == sorted(names)

    with open(students, "a") as fh:
        fh.write("bad name,x@lab.example,Bad,nowhere\n")
    refused = run(home, "user", "import", students)
    assert refused.returncode == 1 and "line 5" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1  # one line naming the field

    ok(run(home, "quota", "set", course, "--memory-mib", "unlimited"))
    quota = json.loads(ok(run(home, "quota", "show", course, "--json")))
    assert quota["instances"] == 4 and quota["memory_mib"] is None
    usage = json.loads(ok(run(home, "quota", "usage", course, "--json")))
    assert usage["resources"]["instances"] == {"limit": 4, "in_use": 0}

    key_file = os.path.join(home, "course-key")
    ok(run(home, "key", "generate", "course", "--output", key_file))
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert open(key_file).read().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    again = run(home, "key", "generate", "course2", "--output", key_file)
    assert again.returncode == 1 and os.path.exists(key_file)  # never overwritten

    audit = json.loads(ok(run(home, "audit", "--json")))
    assert {"create_project", "import_users"} <= {r["action"] for r in audit}


def test_errors_are_one_line_and_an_ended_session_says_how_to_go_on(stack, home):
    result = run(home, "project", "create", "Not A Name", "--instances", "1")
    assert result.returncode == 1 and result.stderr.startswith("error: name:"), result.stderr
    assert run(home, "project", "nosuch").returncode == 2  # a usage error
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    ok(run(home, "logout"))
    revoked = run(home, "project", "list", env={"LABCLOUD_URL": stack.url})
    assert revoked.returncode == 1 and "labcloud login" in revoked.stderr, revoked.stderr
    # The environment's token wins over the (logged-out) file.
    listed = run(home, "project", "list", "--json", env={"LABCLOUD_URL": stack.url, "LABCLOUD_TOKEN": admin.token})
    assert any(p["name"] == "admin" for p in json.loads(ok(listed)))
