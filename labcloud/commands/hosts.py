"""`labcloud host ...`: the hypervisor hosts, their capacity and what is allocated on them, and
taking one out of placement (disable) or back (enable). Admins."""
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
    """Hypervisor hosts (admins): list, show, disable, enable."""


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

COMMANDS = [host]
