"""`labcloud instance ...` and `labcloud flavor list`: instances the way euca2ools and `openstack
server` users expect, through the REST API only. Asynchronous actions take --wait: a spinner with the
current state until the instance settles; the command then exits 0, or 1 with the reason when it
ended in `error`."""
import os
import sys
import time

import click

from labcloud.client import ApiError, ClientError
from labcloud.commands import output
from labcloud.commands.base import completes, connect, group, project_option

INSTANCE_COLUMNS = [("name", "NAME"), ("state", "STATE"), ("ip", "IP"), ("ssh", "SSH"), ("project", "PROJECT"),
                    ("host", "HOST"), ("created_at", "CREATED")]
FLAVOR_COLUMNS = [("id", "ID"), ("name", "NAME"), ("vcpus", "VCPUS"), ("memory_mib", "MEMORY_MIB"),
                  ("disk_gib", "DISK_GIB"), ("cpu_weight", "CPU_WEIGHT"), ("cpu_cap_percent", "CPU_CAP_%")]
ACTION_COLUMNS = [("requested_at", "REQUESTED"), ("action", "ACTION"), ("by", "BY"), ("result", "RESULT"),
                  ("finished_at", "FINISHED"), ("message", "MESSAGE")]
# What each action waits for: the state it ends in (an instance in `error` ends any wait).
SETTLED = {"create": {"running"}, "start": {"running"}, "reboot": {"running"}, "stop": {"stopped"},
           "resize": {"running", "stopped"}, "migrate": {"running", "stopped"}}
DEFAULT_WAIT_S = 600


def name_argument(command):
    return click.argument("name", metavar="NAME", shell_complete=completes("/instances"))(command)


def wait_options(command):
    command = click.option("--wait", is_flag=True, help="wait until it settles, showing its state")(command)
    return click.option("--timeout", type=click.IntRange(min=1), default=DEFAULT_WAIT_S, show_default=True,
                        help="seconds --wait waits at most")(command)


@group()
def instance():
    """Instances: create, list, show, set, resize, migrate, stop, start, reboot, delete, console, ssh, actions."""


@instance.command("create")
@click.argument("name")
@click.option("--flavor", required=True, help="flavor name or id (labcloud flavor list)",
              shell_complete=completes("/flavors"))
@click.option("--image", required=True, help="image name or id (labcloud image list)",
              shell_complete=completes("/images"))
@click.option("--key", required=True, help="SSH key name or id (labcloud key list)",
              shell_complete=completes("/keys"))
@project_option("the project (course); may be left out by a member of exactly one")
@click.option("--user-data", type=click.File("r"), help="a script or cloud-config file ('-': stdin), at most 16 KiB")
@click.option("--group", help="a placement group of your own instances (a name)")
@click.option("--anti-affinity", is_flag=True, help="on a host with no other instance of --group")
@click.option("--security-group", "security_groups", multiple=True,
              help="a security group of the course (repeatable; default: the course's `default`)")
@wait_options
@output.format_options
def instance_create(name, flavor, image, key, project, user_data, group, anti_affinity, security_groups, wait,
                    timeout, fmt):
    """Create an instance (POST /instances); --wait until it runs."""
    client = connect()
    # A name goes as it is: the server boots its newest active version (an id: that image).
    body = {"name": name, "flavor": client.find_flavor(flavor)["id"], "image": int(image) if image.isdigit() else image,
            "key": client.find_key(key)["id"]}
    if project:
        body["project"] = client.project_id(project)
    if user_data:
        body["user_data"] = user_data.read()
    if group:
        body["group"] = group
    if anti_affinity:
        body["anti_affinity"] = True
    if security_groups:
        body["security_groups"] = list(security_groups)
    made = client.post("/instances", body)
    _finish(client, made, "create", wait, timeout, fmt)


@instance.command("list")
@project_option("only this project's instances")
@click.option("--deleted", is_flag=True, help="also list deleted instances")
@output.format_options
def instance_list(project, deleted, fmt):
    """Instances: mine, those of the projects I manage (all for an admin)."""
    client = connect()
    params = {"include_deleted": "true" if deleted else None,
              "project": client.project_id(project) if project else None}
    output.emit_formatted(client.get("/instances", params=params), fmt, columns=INSTANCE_COLUMNS)


@instance.command("show")
@name_argument
@output.format_options
def instance_show(name, fmt):
    """One instance, every field."""
    output.emit_formatted(connect().find_instance(name, include_deleted=True), fmt)


def _power(action):
    @name_argument
    @wait_options
    @output.format_options
    def command(name, wait, timeout, fmt):
        client = connect()
        found = client.find_instance(name)
        _finish(client, client.post(f"/instances/{found['id']}/{action}"), action, wait, timeout, fmt)
    command.__doc__ = {"stop": "Stop an instance: ACPI shutdown, then power off; --wait until stopped.",
                       "start": "Start a stopped instance; --wait until it runs.",
                       "reboot": "Reboot a running instance; --wait until it runs again."}[action]
    return instance.command(action)(command)


for _action in ("stop", "start", "reboot"):
    _power(_action)


@instance.command("delete")
@name_argument
@wait_options
@output.format_options
def instance_delete(name, wait, timeout, fmt):
    """Delete an instance from any state; --wait until it is gone."""
    client = connect()
    found = client.find_instance(name)
    accepted = client.delete(f"/instances/{found['id']}")
    if not wait:
        return _show_accepted(accepted, fmt)
    with output.StateSpinner(f"deleting {found['name']}") as spinner:
        deadline = time.monotonic() + timeout
        while True:
            try:
                current = client.get(f"/instances/{found['id']}")
            except ApiError as exc:
                if exc.status == 404:  # gone: nothing of it is left
                    break
                raise
            spinner.show(current["state"])
            if current["state"] == "deleted":
                break
            if time.monotonic() > deadline:
                raise ClientError(f"{found['name']} is still {current['state']} after {timeout} s")
            time.sleep(0.5)
    output.say(f"{found['name']}: deleted")


@instance.command("console")
@name_argument
def instance_console(name):
    """The instance's serial console output (its last 64 KiB; EC2 GetConsoleOutput)."""
    client = connect()
    found = client.find_instance(name)
    click.echo(client.get(f"/instances/{found['id']}/console")["output"], nl=False)


@instance.command("actions")
@name_argument
@output.format_options
def instance_actions(name, fmt):
    """An instance's action log: who asked what and how it ended (deleted instances too)."""
    client = connect()
    found = client.find_instance(name, include_deleted=True)
    actions = client.get(f"/instances/{found['id']}/actions")
    if fmt.kind != "json":  # the table's BY: who asked, or labcloud itself (reconcile)
        actions = [dict(a, by=a.get("username") or "labcloud") for a in actions]
    output.emit_formatted(actions, fmt, columns=ACTION_COLUMNS)


@instance.command("ssh", context_settings={"ignore_unknown_options": True})
@name_argument
@click.option("-i", "--identity", default=os.path.expanduser("~/.ssh/id_ed25519"), show_default=True,
              help="private key file")
@click.option("-l", "--user", default="root", show_default=True)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def instance_ssh(name, identity, user, command):
    """Log in to an instance with the system's ssh client: labcloud instance ssh NAME [-- COMMAND]."""
    exec_ssh(connect().ssh_endpoint(name), identity, user, command)


def exec_ssh(endpoint, identity, user, command):
    """Hand over to the system's ssh client on the instance's endpoint (also `labcloud ssh`)."""
    argv = ["ssh", "-p", str(endpoint["port"]), "-i", identity, "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", f"{user}@{endpoint['host']}"]
    sys.stdout.flush()
    os.execvp("ssh", argv + list(command))


def _show_accepted(instance_row, fmt):
    if fmt.kind == "table":
        output.say(f"{instance_row['name']}: {instance_row['state']} (accepted; --wait follows it)")
    else:
        output.emit_formatted(instance_row, fmt)


def _finish(client, accepted, action, wait, timeout, fmt):
    """After an accepted request: with --wait follow the instance until it settles."""
    if not wait:
        return _show_accepted(accepted, fmt)
    final = wait_for_state(client, accepted, SETTLED[action], timeout, action)
    if fmt.kind == "table":
        output.say(f"{final['name']}: {final['state']}" + (f" ({final['reason']})" if final.get("reason") else "")
                   + (f", ssh port {final['ssh']['port']}" if final.get("ssh") and final["state"] == "running" else ""))
    else:
        output.emit_formatted(final, fmt)
    if final["state"] == "error":
        raise click.exceptions.Exit(1)


def wait_for_state(client, accepted, targets, timeout, action):
    """Poll until the instance is in one of `targets` or in `error`; the spinner shows each state.
    (The accepted answer already carries the in-progress state: `rebooting`, `stopping`...)"""
    deadline = time.monotonic() + timeout
    with output.StateSpinner(f"{action} {accepted['name']}") as spinner:
        while True:
            current = client.get(f"/instances/{accepted['id']}")
            spinner.show(current["state"])
            if current["state"] == "error" or current["state"] in targets:
                return current
            if time.monotonic() > deadline:
                raise ClientError(f"{accepted['name']} is still {current['state']} after {timeout} s")
            time.sleep(0.5)


@group()
def flavor():
    """Instance flavors (labcloud flavor list)."""


@flavor.command("list")
@output.format_options
def flavor_list(fmt):
    """The flavors: vCPUs, memory, disk, CPU weight and cap."""
    output.emit_formatted(connect().get("/flavors"), fmt, columns=FLAVOR_COLUMNS)


IMAGE_COLUMNS = [("id", "ID"), ("name", "NAME"), ("version", "VERSION"), ("state", "STATE"),
                 ("visibility", "VISIBILITY"), ("boot", "BOOT"), ("format", "FORMAT"), ("size_bytes", "SIZE_BYTES"),
                 ("min_disk_gib", "MIN_DISK_GIB"), (lambda i: i.get("min_memory_mib") or "", "MIN_MEMORY_MIB"),
                 ("created_at", "CREATED")]


@click.command("list")
@output.format_options
def image_list(fmt):
    """The images I may see: public, my courses', my own."""
    output.emit_formatted(connect().get("/images"), fmt, columns=IMAGE_COLUMNS)


COMMANDS = [instance, flavor]
