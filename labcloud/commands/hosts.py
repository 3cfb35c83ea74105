"""`labcloud host list`: the hypervisor hosts, their capacity and use (admin)."""
from labcloud.commands import output
from labcloud.commands.base import connect, group


def _share(used, total):
    return lambda row: f"{row.get(used)}/{row.get(total)}"


HOST_COLUMNS = [("name", "NAME"), ("state", "STATE"), ("hypervisor", "HYPERVISOR"),
                (_share("used_vcpus", "vcpus"), "VCPUS"), (_share("used_memory_mib", "memory_mib"), "MEMORY_MIB"),
                ("last_heartbeat", "LAST_HEARTBEAT")]


@group()
def host():
    """Hypervisor hosts (labcloud host list, admin)."""


@host.command("list")
@output.json_option
def host_list(as_json):
    """The hosts: state, vCPUs and memory in use / in total, last heartbeat (GET /hosts, admin)."""
    output.emit(connect().get("/hosts"), as_json, columns=HOST_COLUMNS)


COMMANDS = [host]
