"""`labcloud instance set`: an instance's resource shares (CPU weight and cap, memory, bandwidth),
changed live through PATCH /instances/{id}. The values mean what XenServer's do (docs/architecture.md,
"Resource shares")."""
import click

from labcloud.commands import output
from labcloud.commands.base import connect
from labcloud.commands.instances import instance, name_argument

SHARE_FIELDS = [("cpu_weight", "CPU_WEIGHT"), ("cpu_cap", "CPU_CAP_%"), ("memory_mib", "MEMORY_MIB"),
                ("bandwidth_in_kib", "IN_KIB/S"), ("bandwidth_out_kib", "OUT_KIB/S")]


@instance.command("set")
@name_argument
@click.option("--cpu-weight", type=int, help="relative CPU weight, 1-65536 (default 256): 512 gets twice "
                                             "the CPU of 256 on a busy host")
@click.option("--cpu-cap", type=int, help="most CPU the whole guest may use, percent of one vCPU "
                                          "(0 = no cap, 100 = one vCPU)")
@click.option("--memory", "memory_mib", type=int, help="memory in MiB, up to the flavor's maximum")
@click.option("--bandwidth-in", "bandwidth_in_kib", type=int, help="KiB/s into the guest (0 = no limit)")
@click.option("--bandwidth-out", "bandwidth_out_kib", type=int, help="KiB/s out of the guest (0 = no limit)")
@output.format_options
def instance_set(name, fmt, **shares):
    """Change a running or stopped instance's resources, live (owner or admin)."""
    body = {field: value for field, value in shares.items() if value is not None}
    if not body:
        raise click.UsageError("give at least one of --cpu-weight, --cpu-cap, --memory, --bandwidth-in, "
                               "--bandwidth-out")
    client = connect()
    found = client.find_instance(name)
    changed = client.patch(f"/instances/{found['id']}", body)
    if fmt.kind == "table":
        output.emit_formatted([changed], fmt, columns=[("name", "NAME")] + SHARE_FIELDS)
    else:
        output.emit_formatted(changed, fmt)


COMMANDS = []  # `instance set` joins the `instance` group, which instances.COMMANDS registers
