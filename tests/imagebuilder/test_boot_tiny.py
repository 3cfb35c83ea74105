"""Build the `tiny` image for real (Debian packages from the apt mirror, cached) and boot it with
bare QEMU: SSH in with a key served by a metadata server, check hostname, user-data and /data,
then press the ACPI power button and see the guest power itself off. Only loopback is used."""
import json
import os
import pathlib

import pytest

from imagebuilder import bareboot

pytestmark = [
    pytest.mark.realguest,
    pytest.mark.timeout(600),
]  # qemu-system-x86, qemu-utils, e2fsprogs and apt come with `make test`: missing ones fail

USER_DATA = """#!/bin/sh
echo "user-data ran as $(id -u)" > /root/user-data-ran
echo persisted > /data/from-user-data
"""


@pytest.fixture(scope="module")
def tiny_image(image_builds):
    """The session's real build of `tiny` (tests/conftest.py ImageBuilds: built once per session,
    in a directory of its own; with its disk image too when a test asked for that first)."""
    image_dir, manifest = image_builds.get()
    print(f"\nbuild: {manifest['build_seconds'] if manifest['rebuilt'] else 'up to date'} s")
    return pathlib.Path(image_dir), manifest


def test_manifest_describes_the_image(tiny_image):
    image_dir, manifest = tiny_image
    on_disk = json.loads((image_dir / "manifest.json").read_text())
    assert on_disk["inputs_sha256"] == manifest["inputs_sha256"]
    names = {p["name"] for p in on_disk["packages"]}
    assert {"busybox-static", "dropbear-bin", "libgmp10", "libc6"} <= names
    assert any(n.startswith("linux-image-6.1.0-") for n in names)
    assert len(on_disk["modules"]) >= 18
    for role in ("kernel", "kernel_bzimage", "initrd", "root_disk"):
        info = on_disk["files"][role]
        assert os.path.getsize(image_dir / info["path"]) == info["size"] > 0
    assert (image_dir / "vmlinux").read_bytes()[:4] == b"\x7fELF"
    assert os.path.samefile(image_dir / "root.qcow2", image_dir.parent / "tiny.qcow2") or \
        (image_dir / "root.qcow2").read_bytes() == (image_dir.parent / "tiny.qcow2").read_bytes()
    assert "{ip}" in on_disk["cmdline_template"]


@pytest.mark.parametrize("network", ["static", "dhcp"])
def test_boot_to_ssh(tiny_image, network):
    image_dir, _ = tiny_image
    key = bareboot.generate_ed25519_key()
    seen = {}

    def inside(client, guest):
        seen["hostname"] = bareboot.run(client, "hostname").strip()
        seen["user_data"] = bareboot.run(client, "cat /root/user-data-ran").strip()
        seen["data"] = bareboot.run(client, "cat /data/from-user-data; grep ' /data ' /proc/mounts")
        seen["keys_mode"] = bareboot.run(client, "stat -c %a /root/.ssh/authorized_keys").strip()
        seen["poweroff_seconds"] = guest.powerdown(timeout=60)
        seen["console"] = guest.console()

    seconds = bareboot.boot_and_ssh(str(image_dir), key, hostname="tinyvm", user_data=USER_DATA,
                                    on_ssh=inside, timeout=180, network=network)
    print(f"\nboot-to-SSH ({network}): {seconds:.2f} s, ACPI poweroff: {seen['poweroff_seconds']:.2f} s")
    assert seen["hostname"] == "tinyvm"
    assert seen["user_data"] == "user-data ran as 0"
    assert seen["data"].startswith("persisted\n/dev/vda /data ext4")
    assert seen["keys_mode"] == "600"
    assert "labcloud: network up 10.0.2.15" in seen["console"]
    assert "labcloud: ssh ready" in seen["console"]
