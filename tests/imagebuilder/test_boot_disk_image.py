"""Build `tiny` with --disk-image for real and boot disk.qcow2 the way an image made elsewhere boots:
bare QEMU with no -kernel (SeaBIOS -> syslinux's MBR -> syslinux -> bzImage + initrd from the FAT
partition), address by DHCP, metadata from the default http://169.254.169.254/latest (forwarded by
QEMU's user network to a MetadataServer on loopback). Only loopback is used."""
import json
import os
import pathlib
import subprocess

import pytest

from imagebuilder import bareboot
from imagebuilder.build import build, sha256_file
from tests.conftest import DEB_CACHE

pytestmark = [
    pytest.mark.realguest,
    pytest.mark.timeout(600),
]  # qemu-system-x86, qemu-utils, e2fsprogs, syslinux, mtools, dosfstools, fdisk come with `make test`

USER_DATA = """#!/bin/sh
echo "user-data ran as $(id -u)" > /root/user-data-ran
echo persisted > /data/from-user-data
"""


@pytest.fixture(scope="module")
def disk_image(image_builds):
    """The session's real build of `tiny` with its disk image (tests/conftest.py ImageBuilds: built
    once per session, in a directory of its own), and a second build there changes nothing."""
    image_dir, manifest = image_builds.get(disk_image=True)
    print(f"\nbuild with disk image: {manifest['build_seconds']} s")
    data_dir = os.path.dirname(os.path.dirname(image_dir))
    assert not build("tiny", data_dir, cache_dir=DEB_CACHE, disk_image=True)["rebuilt"]
    return pathlib.Path(image_dir), manifest


def test_manifest_records_the_disk_image(disk_image):
    image_dir, manifest = disk_image
    on_disk = json.loads((image_dir / "manifest.json").read_text())
    info = on_disk["files"]["disk_image"]
    assert info["path"] == on_disk["disk_image"] == "disk.qcow2"
    assert info["sha256"] == sha256_file(image_dir / "disk.qcow2") and info["size"] > 0
    assert on_disk["disk_image_cmdline"] == "console=ttyS0"
    qemu_info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", image_dir / "disk.qcow2"],
                                          check=True, capture_output=True).stdout)
    assert qemu_info["format"] == "qcow2" and "backing-filename" not in qemu_info
    assert qemu_info["virtual-size"] == on_disk["disk_image_virtual_size"]


def test_disk_image_boots_by_itself_to_ssh(disk_image):
    image_dir, manifest = disk_image
    key = bareboot.generate_ed25519_key()
    seen = {}

    def inside(client, guest):
        seen["qemu_args"] = guest.proc.args
        seen["hostname"] = bareboot.run(client, "hostname").strip()
        seen["cmdline"] = bareboot.run(client, "cat /proc/cmdline").strip()
        seen["dhcp_ip"] = bareboot.run(client, "cat /run/dhcp-ip").strip()
        seen["addr"] = bareboot.run(client, "ip -4 -o addr show dev eth0")
        seen["user_data"] = bareboot.run(client, "cat /root/user-data-ran").strip()
        seen["data"] = bareboot.run(client, "cat /data/from-user-data; grep ' /data ' /proc/mounts")
        seen["poweroff_seconds"] = guest.powerdown(timeout=60)
        seen["console"] = guest.console()

    seconds = bareboot.boot_and_ssh(str(image_dir), key, hostname="diskvm", user_data=USER_DATA,
                                    on_ssh=inside, timeout=240, kernel=None, disk="disk.qcow2",
                                    network="dhcp")
    print(f"\nboot-to-SSH (disk image, syslinux, DHCP): {seconds:.2f} s, "
          f"ACPI poweroff: {seen['poweroff_seconds']:.2f} s")
    # booted from the disk's own bootloader, with the command line syslinux.cfg gives
    assert not {"-kernel", "-initrd", "-append"} & set(seen["qemu_args"])
    assert "SYSLINUX" in seen["console"]
    assert seen["cmdline"].split() == ["BOOT_IMAGE=/bzImage", "console=ttyS0", "initrd=/initrd.img"]
    # hostname and key (we logged in) from the metadata service at its default address
    assert seen["hostname"] == "diskvm"
    # the address came from QEMU's DHCP server: udhcpc's lease, on eth0, announced on the console
    assert seen["dhcp_ip"] == bareboot.LINK_LOCAL_GUEST
    assert f"inet {bareboot.LINK_LOCAL_GUEST}/16 " in seen["addr"]
    assert f"labcloud: network up {bareboot.LINK_LOCAL_GUEST}" in seen["console"]
    assert seen["user_data"] == "user-data ran as 0"
    assert seen["data"].startswith("persisted\n/dev/vda2 /data ext4")
    assert "labcloud: data disk mounted on /data from /dev/vda2" in seen["console"]
    assert "labcloud: ssh ready" in seen["console"]
    # the guest wrote to its copy-on-write overlay only
    assert sha256_file(image_dir / "disk.qcow2") == manifest["files"]["disk_image"]["sha256"]
