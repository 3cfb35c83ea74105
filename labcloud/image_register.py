"""`labcloud image register NAME`: make an image bootable for users (needs an admin's token).

    labcloud image register course-a                  an image `labcloud image build course-a` made
    labcloud image register debian --disk FILE.qcow2  a disk image made elsewhere (own bootloader,
                                                      cloud-init; it gets DHCP and the metadata service)

Paths are read by the storage service: an image built here is named relative to the data dir it
was built in (the storage service's DATA_DIR); a --disk file is passed as an absolute path.
"""
import argparse
import os
import sys

from labcloud.client import ApiClient, ClientError

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


def main(argv):
    parser = argparse.ArgumentParser(prog="labcloud image register", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="image name users will see (lower case, digits, '-')")
    parser.add_argument("--disk", help="a qcow2 disk image made elsewhere, booted from its own bootloader")
    parser.add_argument("--description", default="")
    parser.add_argument("--min-disk-gib", type=int, help="smallest root disk for this image")
    parser.add_argument("--data-dir", default=os.environ.get("LABCLOUD_DATA_DIR", "var"),
                        help="where `labcloud image build` wrote the image (default: $LABCLOUD_DATA_DIR or ./var)")
    args = parser.parse_args(argv)
    try:
        request = registration_request(args.name, args.data_dir, args.disk, args.description, args.min_disk_gib)
        image = ApiClient.from_environment().post("/images", request)
    except ClientError as exc:
        print(f"labcloud image register: {exc}", file=sys.stderr)
        return 2
    print(f"{image['name']}: image {image['id']}, boots from its {image['boot']}, "
          f"{image['size_bytes'] / 1e6:.1f} MB, root disk at least {image['min_disk_gib']} GiB")
    return 0
