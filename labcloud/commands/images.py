"""`labcloud image upload|show|delete` and `labcloud instance save-image`, through the REST API.

\b
    labcloud image upload debian debian-12.qcow2                       private, version 1 (2, 3... next)
    labcloud image upload lab1 lab1.qcow2 --visibility project --project 3   for a course (its teachers)
    labcloud image upload base base.raw --format raw --min-memory-mib 512 --visibility public  (admins)
    labcloud image upload lab2 root.qcow2 --kernel vmlinux --ramdisk initrd.img --cmdline "console=ttyS0"
"""
import os
import time

import click

from labcloud.client import ClientError
from labcloud.commands import output
from labcloud.commands.base import completes, connect

POLL_S = 1
IMAGE_FIELDS = ("id", "name", "version", "state", "visibility", "project", "format", "size_bytes", "file_bytes",
                "checksum", "min_disk_gib", "min_memory_mib", "boot", "reason", "created_at")


def _says(image):
    return (f"{image['name']} version {image['version']}: image {image['id']}, {image['state']}, "
            f"{image['visibility']}, {(image.get('file_bytes') or 0) / 1e6:.1f} MB "
            f"(disk {image['size_bytes'] / 1e6:.1f} MB), sha256 {image.get('checksum') or '-'}")


@click.command("upload")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--format", "disk_format", type=click.Choice(["qcow2", "raw"]), default="qcow2", show_default=True)
@click.option("--visibility", type=click.Choice(["private", "project", "public"]), default="private",
              show_default=True, help="project: a course (its teachers); public: admins")
@click.option("--project", help="the course of a project image (name or id)")
@click.option("--description", default="")
@click.option("--min-disk-gib", type=click.IntRange(1, 2048), help="smallest root disk (never below the disk's size)")
@click.option("--min-memory-mib", type=click.IntRange(16, 1 << 20), help="smallest flavor memory")
@click.option("--kernel", type=click.Path(exists=True, dir_okay=False, readable=True),
              help="direct kernel boot: the kernel (an ELF vmlinux or a bzImage)")
@click.option("--ramdisk", type=click.Path(exists=True, dir_okay=False, readable=True),
              help="direct kernel boot: the initramfs (with --kernel)")
@click.option("--cmdline", help="direct kernel boot: the kernel's command line (with --kernel)")
@output.json_option
def image_upload(name, file, disk_format, visibility, project, description, min_disk_gib, min_memory_mib, kernel,
                 ramdisk, cmdline, as_json):
    """Upload a disk image (POST /images, then PUT /images/ID/file) with a progress bar; with
    --kernel (and --ramdisk) it boots that kernel directly, its disk attached.

    The same NAME again becomes its next version; `--image NAME` boots the newest."""
    if (ramdisk or cmdline) and not kernel:
        raise ClientError("--ramdisk and --cmdline go with --kernel")
    client = connect()
    body = {"name": name, "format": disk_format, "visibility": visibility, "description": description}
    if project:
        body["project"] = client.project_id(project)
    if min_disk_gib:
        body["min_disk_gib"] = min_disk_gib
    if min_memory_mib:
        body["min_memory_mib"] = min_memory_mib
    if cmdline:
        body["cmdline"] = cmdline
    image = client.post("/images", body)
    try:
        for part, path in (("kernel", kernel), ("ramdisk", ramdisk), ("file", file)):
            if path:
                image = _send(client, image["id"], part, path)
    except ClientError:
        # The queued image would only wait for the sweep: remove it now (it has no file).
        try:
            client.delete(f"/images/{image['id']}")
        except ClientError:
            pass
        raise
    output.answer(image, as_json, lambda: _says(image))


def _send(client, image_id, part, path):
    """PUT one file of the image with a progress bar (the disk last: its check makes it active)."""
    size = os.path.getsize(path)
    then = "sent; the server is checking the image" if part == "file" else f"sent; the server is checking the {part}"
    with open(path, "rb") as source, output.UploadProgress(f"uploading {os.path.basename(path)}", size,
                                                           then=then) as progress:
        return client.request("PUT", f"/images/{image_id}/{part}", data=progress.reader(source),
                              headers={"Content-Type": "application/octet-stream"})


@click.command("show")
@click.argument("image", shell_complete=completes("/images"))
@output.json_option
def image_show(image, as_json):
    """One image (name: its newest version; or an id)."""
    client = connect()
    found = client.get(f"/images/{_image_id(client, image)}")
    output.emit(found, as_json, fields=IMAGE_FIELDS)


@click.command("delete")
@click.argument("image", shell_complete=completes("/images"))
@output.json_option
def image_delete(image, as_json):
    """Delete an image by id (or a name with one version): refused while disks stand on it."""
    client = connect()
    gone = client.delete(f"/images/{_image_id(client, image)}")
    output.answer(gone, as_json, lambda: f"image {gone['id']} ({gone['name']} version {gone['version']}) deleted")


def _image_id(client, value):
    """Digits are an id; a name is its newest version, when the name is in one scope only."""
    text = str(value)
    if text.isdigit():
        return int(text)
    named = [i for i in client.get("/images") if i["name"] == text]
    if not named:
        raise ClientError(f"no image named {value}")
    if len({(i["visibility"], i["project"], i["user_id"]) for i in named}) > 1:
        ids = ", ".join(f"{i['id']} ({i['visibility']} v{i['version']})" for i in named)
        raise ClientError(f"several images are named {value}: {ids}: give the id")
    return max(named, key=lambda i: i["version"])["id"]


@click.command("save-image")
@click.argument("instance", shell_complete=completes("/instances"))
@click.argument("image_name")
@click.option("--visibility", type=click.Choice(["project", "private", "public"]), default="project",
              show_default=True, help="project: the instance's course; public: admins")
@click.option("--description", default="")
@click.option("--timeout", type=float, default=1800, show_default=True, help="seconds to wait for it")
@output.json_option
def instance_save_image(instance, image_name, visibility, description, timeout, as_json):
    """Save a stopped instance's disk as a new image (POST /instances/ID/save-image); waits until
    it is active (exit 1 when it ends in error)."""
    client = connect()
    found = client.find_instance(instance)
    image = client.post(f"/instances/{found['id']}/save-image",
                        {"name": image_name, "visibility": visibility, "description": description})
    deadline = time.monotonic() + timeout
    while image["state"] == "saving" and time.monotonic() < deadline:
        time.sleep(POLL_S)
        image = client.get(f"/images/{image['id']}")
    output.answer(image, as_json, lambda: _says(image))
    if image["state"] != "active":
        output.error(f"image {image['id']} is {image['state']}: {image.get('reason') or 'still saving'}")
        click.get_current_context().exit(1)
