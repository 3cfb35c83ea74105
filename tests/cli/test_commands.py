"""The commands that were there before click (same arguments, output and exit statuses), the
audit log, --version, rich tables on a terminal, and bash completion through click."""
import json
from datetime import datetime

from click.testing import CliRunner

from labcloud import image_register
from labcloud.cli import cli, main

ACTIONS = [{"requested_at": "2030-01-01T10:00:00+00:00", "action": "create", "username": "ada",
            "result": "success", "finished_at": "2030-01-01T10:00:09+00:00", "message": None},
           {"requested_at": "2030-01-01T11:00:00+00:00", "action": "reconcile", "username": None,
            "result": "success", "finished_at": "2030-01-01T11:00:00+00:00", "message": "no domain: repaired"}]
INSTANCES = [{"id": "0f0e", "name": "lab1", "state": "deleted", "created_at": "2030-01-01T10:00:00+00:00"}]


def test_instance_actions_prints_the_same_columns(api, labcloud):
    api.reply("GET", "/instances", INSTANCES)
    api.reply("GET", "/instances/0f0e/actions", ACTIONS)
    shown = labcloud("instance", "actions", "lab1")
    assert shown.exit_code == 0, shown.output
    assert api.calls("GET", "/instances")[-1]["args"] == {"include_deleted": "true"}
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["REQUESTED", "ACTION", "BY", "RESULT", "FINISHED", "MESSAGE"]
    assert [line.split()[1:4] for line in lines[1:]] == [["create", "ada", "success"],
                                                         ["reconcile", "labcloud", "success"]]
    assert json.loads(labcloud("instance", "actions", "lab1", "--json").stdout) == ACTIONS
    missing = labcloud("instance", "actions", "no-such-vm")
    assert missing.exit_code == 1 and "no instance named no-such-vm" in missing.stderr


def test_admin_reconcile(api, labcloud):
    report = {"id": 4, "trigger": "admin", "replica": "r1", "started_at": "2030-01-01T10:00:00+00:00",
              "hosts": ["host1"], "findings": [{"host": "host1", "kind": "orphan", "subject": "x",
                                                "action": "orphan_removed", "detail": "-"}]}
    api.reply("POST", "/admin/reconcile", report)
    ran = labcloud("admin", "reconcile")
    assert ran.exit_code == 0, ran.output
    assert ran.stdout.startswith("reconcile 4 (admin, r1) at 2030-01-01T10:00:00+00:00: hosts host1; 1 findings\n")
    assert ran.stdout.splitlines()[1].split() == ["HOST", "KIND", "SUBJECT", "ACTION", "DETAIL"]
    api.reply("GET", "/admin/reconcile", [report])
    listed = labcloud("admin", "reconcile", "--reports", "1", "--json")
    assert json.loads(listed.stdout) == [report] and api.calls("GET", "/admin/reconcile")[-1]["args"] == {"limit": "1"}
    api.error("POST", "/admin/reconcile", 403, "only an admin may do this", code="forbidden")
    refused = labcloud("admin", "reconcile")
    assert refused.exit_code == 1 and refused.stderr == "error: only an admin may do this (HTTP 403)\n"


def test_image_register_keeps_exit_status_2(api, labcloud, tmp_path, monkeypatch):
    disk = tmp_path / "d.qcow2"
    disk.write_bytes(b"")
    api.reply("POST", "/images", {"id": 2, "name": "debian-cli", "boot": "disk", "size_bytes": 2_000_000,
                                  "min_disk_gib": 2}, 201)
    done = labcloud("image", "register", "debian-cli", "--disk", str(disk), "--description", "from the CLI")
    assert done.exit_code == 0, done.output
    assert done.stdout == "debian-cli: image 2, boots from its disk, 2.0 MB, root disk at least 2 GiB\n"
    assert api.body("POST", "/images") == {"name": "debian-cli", "description": "from the CLI",
                                           "source_path": str(disk)}
    api.error("POST", "/images", 400, "invalid input", {"name": ["lower case, digits and '-'"]})
    refused = labcloud("image", "register", "Bad_Name", "--disk", str(disk))
    assert refused.exit_code == 2 and "name:" in refused.stderr
    missing = labcloud("image", "register", "course-x", "--data-dir", str(tmp_path))
    assert missing.exit_code == 2 and "labcloud image build course-x" in missing.stderr
    # the module's own entry point, as before
    monkeypatch.setenv("LABCLOUD_URL", api.url)
    monkeypatch.setenv("LABCLOUD_TOKEN", "t")
    assert image_register.main(["course-x", "--data-dir", str(tmp_path)]) == 2


def test_run_and_serve_take_their_arguments(monkeypatch):
    import labcloud.cli as module
    seen = []
    monkeypatch.setattr(module, "cmd_run", lambda args: seen.append(("run", vars(args))) or 1)
    monkeypatch.setattr(module, "cmd_serve", lambda args: seen.append(("serve", vars(args))) or 0)
    assert CliRunner().invoke(cli, ["run"]).exit_code == 1  # cmd_run's status is the exit status
    assert CliRunner().invoke(cli, ["serve", "accounts"]).exit_code == 0
    assert CliRunner().invoke(cli, ["serve", "gateway"]).exit_code == 2
    assert seen == [("run", {}), ("serve", {"service": "accounts"})]


def test_ssh_keeps_argparse_remainder(monkeypatch):
    import labcloud.cli as module
    seen = []
    monkeypatch.setattr(module, "cmd_ssh", lambda args: seen.append(vars(args)) or 0)
    CliRunner().invoke(cli, ["ssh", "lab1", "-i", "key", "ls", "-l", "/"])
    CliRunner().invoke(cli, ["ssh", "-l", "ubuntu", "lab1"])
    assert seen == [{"name": "lab1", "identity": "key", "user": "root", "command": ["ls", "-l", "/"]},
                    {"name": "lab1", "identity": seen[1]["identity"], "user": "ubuntu", "command": []}]


def test_audit_resolves_names_and_ages(api, labcloud):
    api.reply("GET", "/users", [{"id": 7, "username": "ada"}])
    api.reply("GET", "/projects", [{"id": 3, "name": "os-2026"}])
    records = [{"id": "u1", "at": "2030-01-01T10:00:00+00:00", "user_id": 7, "username": "ada", "project_id": 3,
                "method": "POST", "path": "/api/v1/instances", "action": "create_instance", "status": 202,
                "result": "success", "address": "10.0.0.1", "message": None}]
    api.reply("GET", "/audit", records)
    done = labcloud("audit", "--user", "ada", "--project", "os-2026", "--since", "2h", "--limit", "5")
    assert done.exit_code == 0, done.output
    args = api.calls("GET", "/audit")[-1]["args"]
    assert {k: args[k] for k in ("user", "project", "limit")} == {"user": "7", "project": "3", "limit": "5"}
    assert datetime.fromisoformat(args["since"]).tzinfo is not None
    assert done.stdout.splitlines()[1].split()[1:4] == ["ada", "3", "create_instance"]
    labcloud("audit", "--since", "2030-01-01T09:00:00+01:00")
    assert api.calls("GET", "/audit")[-1]["args"] == {"since": "2030-01-01T09:00:00+01:00"}
    assert labcloud("audit", "--since", "yesterday").exit_code == 2


def test_tables_on_a_terminal_are_rich(api, labcloud):
    api.reply("GET", "/projects", [{"id": 3, "name": "os-[2026]", "description": "x"}])
    shown = labcloud("project", "list", env={"TTY_COMPATIBLE": "1", "COLUMNS": "100"})
    assert shown.exit_code == 0, shown.output
    assert "os-[2026]" in shown.stdout  # no markup eaten
    assert "─" in shown.stdout  # rich's header rule


def test_version_and_main_return_the_status(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("labcloud ")
    assert main(["quota", "set"]) == 2  # a usage error


def test_bash_completion(api, labcloud):
    script = labcloud(env={"_LABCLOUD_COMPLETE": "bash_source"})
    assert script.exit_code == 0 and "_labcloud_completion" in script.stdout
    commands = labcloud(env={"_LABCLOUD_COMPLETE": "bash_complete", "COMP_WORDS": "labcloud pro",
                             "COMP_CWORD": "1"})
    assert commands.stdout.splitlines() == ["plain,project"]
    api.reply("GET", "/projects", [{"id": 3, "name": "os-2026"}, {"id": 4, "name": "db-2026"}])
    names = labcloud(env={"_LABCLOUD_COMPLETE": "bash_complete", "COMP_WORDS": "labcloud quota show o",
                          "COMP_CWORD": "3"})
    assert names.stdout.splitlines() == ["plain,os-2026"]


def test_volume_pools_shows_each_hosts_pool_kind(api, labcloud):
    pools = [{"host": "host1", "pool": "labcloud", "kind": "dir", "capacity_bytes": 100 << 30,
              "allocation_bytes": 10 << 30, "available_bytes": 90 << 30, "promised_bytes": 3 << 30, "volumes": 2},
             {"host": "host2", "pool": "labcloud", "kind": "logical", "capacity_bytes": 500 << 30,
              "allocation_bytes": 0, "available_bytes": 500 << 30, "promised_bytes": 0, "volumes": 0}]
    api.reply("GET", "/storage-pools", pools)
    shown = labcloud("volume", "pools")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["HOST", "POOL", "KIND", "GIB", "FREE_GIB", "PROMISED_GIB", "VOLUMES"]
    assert [line.split() for line in lines[1:]] == [["host1", "labcloud", "dir", "100", "90", "3", "2"],
                                                    ["host2", "labcloud", "logical", "500", "500", "0", "0"]]
    assert json.loads(labcloud("volume", "pools", "--json").stdout) == pools
