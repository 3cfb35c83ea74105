"""`labcloud volume ...`: data volumes (create, list, show, attach, detach, snapshot, snapshots,
delete, snapshot-delete) and the hosts' storage pools (pools, admins), through the REST API only."""
import click

from labcloud.commands import output
from labcloud.commands.base import completes, connect, group

VOLUME_COLUMNS = [("id", "ID"), ("name", "NAME"), ("size_gib", "GIB"), ("state", "STATE"), ("host", "HOST"),
                  (lambda v: v["instance"] or "", "INSTANCE"), (lambda v: v["device"] or "", "DEVICE"),
                  ("project", "PROJECT")]
GIB = 1 << 30
POOL_COLUMNS = [("host", "HOST"), ("pool", "POOL"), ("kind", "KIND"),
                (lambda p: p["capacity_bytes"] // GIB, "GIB"), (lambda p: p["available_bytes"] // GIB, "FREE_GIB"),
                (lambda p: p["promised_bytes"] // GIB, "PROMISED_GIB"), ("volumes", "VOLUMES")]
SNAPSHOT_COLUMNS = [("id", "ID"), ("name", "NAME"), ("volume", "VOLUME"), ("size_gib", "GIB"),
                    ("state", "STATE"), ("host", "HOST"), ("created_at", "CREATED")]


def volume_argument(command):
    return click.argument("volume", metavar="VOLUME", shell_complete=completes("/volumes"))(command)


def _one(data, fmt, columns):
    output.emit_formatted([data] if fmt.kind == "table" else data, fmt, columns=columns)


def _done(data, fmt, sentence):
    """A change's answer: one sentence in the table format, else the API's answer as asked."""
    if fmt.kind == "table":
        return output.say(sentence)
    output.emit_formatted(data, fmt)


@group()
def volume():
    """Data volumes: create, list, show, attach, detach, snapshot, snapshots, delete, snapshot-delete;
    pools (admins)."""


@volume.command("create")
@click.argument("name")
@click.option("--size", "size_gib", type=click.IntRange(1, 2048), help="GiB (required for an empty volume)")
@click.option("--snapshot", help="a copy of this snapshot (name or id)")
@click.option("--image", help="copy-on-write over this image (name or id)")
@click.option("--instance", help="make it on this instance's host, to attach it there")
@click.option("--project", help="the project (name or id); default: your only one")
@output.format_options
def volume_create(name, size_gib, snapshot, image, instance, project, fmt):
    """Create a data volume (POST /volumes)."""
    client = connect()
    body = {"name": name}
    if size_gib is not None:
        body["size_gib"] = size_gib
    if snapshot:
        body["snapshot"] = client.find_snapshot(snapshot)["id"]
    if image:
        body["image"] = client.find_image(image)["id"]
    if instance:
        body["instance"] = client.find_instance(instance)["id"]
    if project:
        body["project"] = client.project_id(project)
    _one(client.post("/volumes", body), fmt, VOLUME_COLUMNS)


@volume.command("list")
@click.option("--project", help="only this project's (name or id)")
@click.option("--instance", help="only those attached to this instance")
@output.format_options
def volume_list(project, instance, fmt):
    """Your volumes and those of the projects you manage (admins: all)."""
    client = connect()
    params = {}
    if project:
        params["project"] = client.project_id(project)
    if instance:
        params["instance"] = client.find_instance(instance)["id"]
    output.emit_formatted(client.get("/volumes", params=params or None), fmt, columns=VOLUME_COLUMNS)


@volume.command("show")
@volume_argument
@output.format_options
def volume_show(volume, fmt):
    """One volume: its state, host, and where it is attached."""
    client = connect()
    output.emit_formatted(client.get(f"/volumes/{client.find_volume(volume)['id']}"), fmt)


@volume.command("attach")
@volume_argument
@click.argument("instance")
@output.format_options
def volume_attach(volume, instance, fmt):
    """Attach to a running (hot-plug) or stopped instance on the volume's host."""
    client = connect()
    found = client.find_volume(volume)
    attached = client.post(f"/volumes/{found['id']}/attach", {"instance": client.find_instance(instance)["id"]})
    _done(attached, fmt, f"{attached['name']}: attached to {instance} as /dev/{attached['device']}")


@volume.command("detach")
@volume_argument
@output.format_options
def volume_detach(volume, fmt):
    """Detach from its instance; the data stays on the volume."""
    client = connect()
    detached = client.post(f"/volumes/{client.find_volume(volume)['id']}/detach", None)
    _done(detached, fmt, f"{detached['name']}: {detached['state']}")


@volume.command("snapshot")
@volume_argument
@click.argument("name")
@output.format_options
def volume_snapshot(volume, name, fmt):
    """Snapshot a volume (a full copy on its host) as NAME."""
    client = connect()
    _one(client.post(f"/volumes/{client.find_volume(volume)['id']}/snapshots", {"name": name}), fmt,
         SNAPSHOT_COLUMNS)


@volume.command("snapshots")
@click.argument("volume", required=False, metavar="[VOLUME]", shell_complete=completes("/volumes"))
@output.format_options
def volume_snapshots(volume, fmt):
    """The snapshots (of one volume, if named)."""
    client = connect()
    path = f"/volumes/{client.find_volume(volume)['id']}/snapshots" if volume else "/snapshots"
    output.emit_formatted(client.get(path), fmt, columns=SNAPSHOT_COLUMNS)


@volume.command("delete")
@volume_argument
@output.format_options
def volume_delete(volume, fmt):
    """Delete a volume that is not attached, and its disk."""
    client = connect()
    gone = client.delete(f"/volumes/{client.find_volume(volume)['id']}")
    _done(gone, fmt, f"{gone['name']}: deleted")


@volume.command("snapshot-delete")
@click.argument("snapshot")
@output.format_options
def volume_snapshot_delete(snapshot, fmt):
    """Delete a snapshot."""
    client = connect()
    gone = client.delete(f"/snapshots/{client.find_snapshot(snapshot)['id']}")
    _done(gone, fmt, f"{gone['name']}: deleted")


@volume.command("pools")
@output.format_options
def volume_pools(fmt):
    """Each up host's storage pool: its kind (dir, logical), size, free space, and what its data
    volumes are promised (admins; GET /storage-pools)."""
    output.emit_formatted(connect().get("/storage-pools"), fmt, columns=POOL_COLUMNS)


COMMANDS = [volume]
