"""`labcloud instance set`, `instance resize` and `instance migrate`: an instance's resource shares
(CPU weight and cap, memory, bandwidth), changed live through PATCH /instances/{id} (the values mean
what XenServer's do: docs/architecture.md, "Resource shares"), its flavor, and its host."""
import click

from labcloud.commands import output
from labcloud.commands.base import connect
from labcloud.client import ApiError
from labcloud.commands.instances import _finish, instance, name_argument, wait_options

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


@instance.command("resize")
@name_argument
@click.option("--flavor", required=True, help="the new flavor's name or id (labcloud flavor list)")
@click.option("--yes", "confirm", is_flag=True, help="restart a running guest if the resize needs it")
@wait_options
@output.format_options
def instance_resize(name, flavor, confirm, wait, timeout, fmt):
    """Resize an instance to another flavor (owner or admin). A running guest whose vCPUs or disk
    change is stopped and started again: asked first, or --yes."""
    client = connect()
    found = client.find_instance(name)
    body = {"flavor": client.find_flavor(flavor)["id"]}
    try:
        resized = client.post(f"/instances/{found['id']}/resize", body)
    except ApiError as exc:
        if "confirm_restart" not in (exc.fields or {}):
            raise
        if not confirm and not click.confirm(f"{exc.message.split(': send')[0]}. Restart it now?", err=True):
            raise click.Abort() from None
        resized = client.post(f"/instances/{found['id']}/resize", dict(body, confirm_restart=True))
    _finish(client, resized, "resize", wait, timeout, fmt)


@instance.command("migrate")
@name_argument
@click.option("--host", help="the destination host (labcloud host list); left out, the scheduler picks one")
@wait_options
@output.format_options
def instance_migrate(name, host, wait, timeout, fmt):
    """Move an instance to another host (admins): a running one live (its SSH sessions go on, its
    endpoint moves), a stopped one cold (POST /instances/{id}/migrate)."""
    client = connect()
    found = client.find_instance(name)
    accepted = client.post(f"/instances/{found['id']}/migrate", {"host": host} if host else {})
    _finish(client, accepted, "migrate", wait, timeout, fmt)


COMMANDS = []  # `instance set` joins the `instance` group, which instances.COMMANDS registers
