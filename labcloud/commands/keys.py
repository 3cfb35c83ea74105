"""`labcloud key ...`: SSH keys, yours and those shared with your projects."""
import os

import click

from labcloud.client import ClientError
from labcloud.commands import output
from labcloud.commands.base import completes, connect, group, project_option

KEY_COLUMNS = [("id", "ID"), ("name", "NAME"), ("fingerprint", "FINGERPRINT"), ("project", "PROJECT"),
               ("created_at", "CREATED")]


@group()
def key():
    """SSH keys: list, add, generate, delete."""


def key_argument():
    return click.argument("key", metavar="KEY", shell_complete=completes("/keys"))


@key.command("list")
@output.json_option
def key_list(as_json):
    """Your keys and those shared with your projects (GET /keys)."""
    output.emit(connect().get("/keys"), as_json, columns=KEY_COLUMNS)


@key.command("show")
@key_argument()
@output.json_option
def key_show(key, as_json):
    """One key, with its public key line (GET /keys/{id})."""
    client = connect()
    output.emit(client.get(f"/keys/{client.find_key(key)['id']}"), as_json)


@key.command("add")
@click.argument("name")
@click.argument("public_key_file", metavar="FILE", type=click.File("r"))
@project_option("share the key with this project's members")
@output.json_option
def key_add(name, public_key_file, project, as_json):
    """Add a public key from FILE (POST /keys).

    FILE is e.g. ~/.ssh/id_ed25519.pub; '-' reads stdin."""
    client = connect()
    body = {"name": name, "public_key": public_key_file.read().strip()}
    if project:
        body["project"] = client.project_id(project)
    added = client.post("/keys", body)
    output.answer(added, as_json, lambda: (
        f"added key {added['name']} ({added['id']}): {added.get('fingerprint', '')}".rstrip(": ")))


@key.command("generate")
@click.argument("name")
@click.option("--type", "key_type", type=click.Choice(["ed25519", "rsa"]), default="ed25519", show_default=True)
@click.option("--output", "-o", "path", type=click.Path(dir_okay=False),
              help="where the private key is written (mode 600; default ~/.ssh/labcloud-NAME); the "
                   "public key goes next to it as PATH.pub. An existing file is never overwritten")
@project_option("share the key with this project's members")
@output.json_option
def key_generate(name, key_type, path, project, as_json):
    """Make a key pair; write the private key here.

    POST /keys/generate: labcloud keeps the public key; the private key is answered once, written
    to --output with mode 600 and never stored by labcloud. An existing file is not overwritten.
    With --json the private key is left out of the JSON (its file is named in
    `private_key_file`)."""
    path = os.path.abspath(os.path.expanduser(path or os.path.join("~", ".ssh", f"labcloud-{name}")))
    public_path = path + ".pub"
    for existing in (path, public_path):
        if os.path.lexists(existing):
            raise ClientError(f"{existing} exists: not overwriting it (choose another --output)")
    client = connect()
    body = {"name": name, "type": key_type}
    if project:
        body["project"] = client.project_id(project)
    if path.startswith(os.path.expanduser("~/.ssh") + os.sep):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    private = _create_exclusive(path, 0o600)  # claimed before the key exists, so it cannot be lost
    try:
        generated = client.post("/keys/generate", body)
    except BaseException:
        os.close(private)
        os.unlink(path)
        raise
    with os.fdopen(private, "w") as f:
        f.write(generated["private_key"].rstrip("\n") + "\n")
    public_line = generated.get("public_key")
    if public_line:
        with os.fdopen(_create_exclusive(public_path, 0o644), "w") as f:
            f.write(public_line.rstrip("\n") + "\n")
    shown = {k: v for k, v in generated.items() if k != "private_key"}
    if as_json:
        return output.print_json({**shown, "private_key_file": path})
    output.say(f"generated {key_type} key {generated['name']} ({generated['id']}): private key in {path}"
               f"{', public key in ' + public_path if public_line else ''}")
    output.say(f"use it with: labcloud ssh INSTANCE -i {path}")


def _create_exclusive(path, mode):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise ClientError(f"{path} exists: not overwriting it (choose another --output)") from None
    except OSError as exc:
        raise ClientError(f"cannot write {path}: {exc.strerror}") from None
    os.fchmod(fd, mode)  # whatever the umask
    return fd


@key.command("delete")
@key_argument()
@output.json_option
def key_delete(key, as_json):
    """Delete a key (DELETE /keys/{id})."""
    client = connect()
    found = client.find_key(key)
    answer = client.delete(f"/keys/{found['id']}")
    output.answer(answer, as_json, lambda: f"deleted key {found['name']} ({found['id']})")


COMMANDS = [key]
