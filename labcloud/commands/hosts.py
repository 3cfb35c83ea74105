"""`labcloud host ...`: the hypervisor hosts, their capacity and what is allocated on them, and
taking one out of placement (disable), back (enable), or emptying it (drain). Admins."""
import time

import click

from labcloud.commands import output
from labcloud.commands.base import connect, group


def _share(allocated, capacity):
    def cell(row):
        total = row.get(capacity)
        return f"{row.get(allocated)}/{_number(total) if total is not None else '?'}"
    return cell


def _number(value):
    return int(value) if float(value).is_integer() else round(value, 1)


HOST_COLUMNS = [("name", "NAME"), ("status", "STATUS"), ("hypervisor", "HYPERVISOR"),
                (_share("allocated_vcpus", "capacity_vcpus"), "VCPUS"),
                (_share("allocated_memory_mib", "capacity_memory_mib"), "MEMORY_MIB"),
                (_share("allocated_disk_gib", "capacity_disk_gib"), "DISK_GIB"),
                ("instances", "INSTANCES"), ("memory_free_mib", "FREE_MIB"), ("load_1m", "LOAD"),
                ("last_heartbeat", "LAST_HEARTBEAT")]
HOST_INSTANCE_COLUMNS = [("name", "NAME"), ("state", "STATE"), ("id", "ID"), ("vcpus", "VCPUS"),
                         ("memory_mib", "MEMORY_MIB"), ("project", "PROJECT")]


def host_argument(command):
    return click.argument("name", metavar="HOST")(command)


@group()
def host():
    """Hypervisor hosts (admins): list, show, disable, enable, drain."""


@host.command("list")
@output.format_options
def host_list(fmt):
    """The hosts: status (up, down, disabled, draining), what is allocated of their capacity (size x
    allocation ratio), instances, last heartbeat (GET /hosts)."""
    output.emit_formatted(connect().get("/hosts"), fmt, columns=HOST_COLUMNS)


@host.command("show")
@host_argument
@output.format_options
def host_show(name, fmt):
    """One host and the instances on it."""
    shown = connect().get(f"/hosts/{name}")
    if fmt.kind != "table":
        return output.emit_formatted(shown, fmt)
    instances = shown.pop("instances_on_host")
    output.emit_formatted(shown, fmt)
    output.say()
    output.emit_formatted(instances, fmt, columns=HOST_INSTANCE_COLUMNS)


def _state_command(action, doc):
    @host_argument
    @output.format_options
    def command(name, fmt):
        changed = connect().post(f"/hosts/{name}/{action}")
        if fmt.kind == "table":
            return output.say(f"{changed['name']}: {changed['status']}")
        output.emit_formatted(changed, fmt)
    command.__doc__ = doc
    return host.command(action)(command)


_state_command("disable", "Take a host out of placement: nothing new goes there; what runs there stays.")
_state_command("enable", "Put a host back into placement.")

@host.command("drain")
@host_argument
@click.option("--wait", is_flag=True, help="wait until its guests are gone and it is disabled")
@click.option("--timeout", type=click.IntRange(min=1), default=600, show_default=True,
              help="seconds --wait waits at most")
@output.format_options
def host_drain(name, wait, timeout, fmt):
    """Empty a host: nothing new goes there, every running instance migrates live (stopped ones
    cold) to other hosts, then it is disabled."""
    client = connect()
    drained = client.post(f"/hosts/{name}/drain")
    if fmt.kind != "table":
        output.emit_formatted(drained, fmt)
    else:
        output.say(f"{name}: {drained['status']}, {len(drained['migrations_started'])} migrating away")
        for instance_id, why in sorted(drained["refused"].items()):
            output.say(f"  {instance_id} stays: {why}")
    if wait:
        deadline = time.monotonic() + timeout
        while True:
            shown = client.get(f"/hosts/{name}")
            # Done when no guest is on its way any more: it is disabled then, or what failed to move
            # is still running there (listed below, the instance's reason says why).
            moving = [i for i in shown["instances_on_host"] if i["state"] == "migrating"]
            if shown["state"] != "draining" or not moving:
                break
            if time.monotonic() > deadline:
                raise click.ClickException(f"{name} still has {len(moving)} migrating after {timeout} s")
            time.sleep(1)
        if fmt.kind == "table":
            left = ", ".join(f"{i['name']} ({i['state']})" for i in shown["instances_on_host"])
            output.say(f"{name}: {shown['status']}" + (f"; left on it: {left}" if left else ""))


COMMANDS = [host]
