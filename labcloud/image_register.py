"""`labcloud image register NAME`: make an image bootable for users (needs an admin's token).

\b
    labcloud image register course-a                  an image `labcloud image build course-a` made
    labcloud image register debian --disk FILE.qcow2  a disk image made elsewhere (own bootloader,
                                                      cloud-init; it gets DHCP and the metadata service)

Paths are read by the storage service: an image built here is named relative to the data dir it
was built in (the storage service's DATA_DIR); a --disk file is passed as an absolute path.
Errors exit with status 2 (as before the CLI moved to click).
"""
import os

import click

from labcloud.client import ClientError
from labcloud.commands import output
from labcloud.commands.base import connect

# What the tiny image is registered with (storage migration 0002): serial console, quiet kernel.
BUILT_IMAGE_CMDLINE = "console=ttyS0 quiet"


def registration_request(name, data_dir, disk=None, description="", min_disk_gib=None):
    request = {"name": name, "description": description}
    if min_disk_gib:
        request["min_disk_gib"] = min_disk_gib
    if disk:
        return {**request, "source_path": os.path.abspath(disk)}
    built = os.path.join("images", name)
    if not os.path.isfile(os.path.join(data_dir, built, "manifest.json")):
        raise ClientError(f"no image {name} built in {data_dir} (labcloud image build {name}, or --disk FILE)")
    return {**request, "source_path": f"{built}/root.qcow2", "kernel_path": f"{built}/vmlinux",
            "initrd_path": f"{built}/initrd.img", "cmdline": BUILT_IMAGE_CMDLINE}


@click.command("register", help=__doc__, short_help="Make an image bootable for users (admin).")
@click.argument("name")
@click.option("--disk", help="a qcow2 disk image made elsewhere, booted from its own bootloader")
@click.option("--description", default="")
@click.option("--min-disk-gib", type=int, help="smallest root disk for this image")
@click.option("--data-dir", default=lambda: os.environ.get("LABCLOUD_DATA_DIR", "var"),
              help="where `labcloud image build` wrote the image (default: $LABCLOUD_DATA_DIR or ./var)")
@output.json_option
def register(name, disk, description, min_disk_gib, data_dir, as_json):
    try:
        request = registration_request(name, data_dir, disk, description, min_disk_gib)
        image = connect().post("/images", request)
    except ClientError as exc:
        output.error(exc)
        click.get_current_context().exit(2)
    if as_json:
        return output.print_json(image)
    output.say(f"{image['name']}: image {image['id']}, boots from its {image['boot']}, "
               f"{image['size_bytes'] / 1e6:.1f} MB, root disk at least {image['min_disk_gib']} GiB")


def main(argv):
    """`labcloud image register` with these arguments; returns the exit status."""
    try:
        register.main(args=list(argv), prog_name="labcloud image register", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
