"""Saving a real guest as an image: a file written in a running QEMU guest (on its disk, /data),
the guest stopped, its disk saved as an image (the host flattens the root disk's qcow2 over the
tiny image into a standalone file in the store), and a new guest booted from that image by name
finds the file: the disk's contents, not a record, prove the save. And an image uploaded with its
own kernel and ramdisk (the tiny image's files, sent through the API) boots a guest."""
import os
import uuid

import pytest

from tests.realguest.guests import students_guests
from tests.realguest.test_real_guest import run, ssh, wait_ready

SAVED_WITHIN_S = 300  # qemu-img convert of a 64 MiB disk, plus checks, on a loaded 2-core machine


@pytest.fixture(scope="module")
def guest(qemu_stack):
    with students_guests(qemu_stack.url, f"saver{uuid.uuid4().hex[:4]}", ("to-save",), wait_ready) as made:
        yield made


def test_a_file_written_in_a_guest_is_in_a_guest_booted_from_its_saved_image(qemu_stack, guest):
    api, key, [source] = guest
    marker = f"labcloud-saved-{uuid.uuid4().hex}"
    with ssh(source, key) as client:
        assert run(client, f"echo {marker} > /data/marker && sync && cat /data/marker") == marker
    api.call("POST", f"/instances/{source['id']}/stop", 202)
    api.wait_for(f"/instances/{source['id']}", lambda r: r.json()["state"] in ("stopped", "error"), timeout=120)

    image = api.call("POST", f"/instances/{source['id']}/save-image", 202,
                     json={"name": "with-marker", "visibility": "private"}).json()
    assert image["state"] == "saving"
    saved = api.wait_for(f"/images/{image['id']}", lambda r: r.json()["state"] != "saving",
                         timeout=SAVED_WITHIN_S, interval=0.5).json()
    assert saved["state"] == "active", saved
    assert saved["boot"] == "kernel" and saved["checksum"] and saved["file_bytes"] > 0

    flavor = min(api.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    booted = api.call("POST", "/instances", 202, json={"name": "from-saved", "flavor": flavor["id"],
                                                       "image": "with-marker", "key": source["key"]}).json()
    try:
        booted = wait_ready(api, booted["id"])
        assert booted["state"] == "running" and booted["image"] == saved["id"], booted
        with ssh(booted, key) as client:
            assert run(client, "cat /data/marker") == marker
    finally:
        api.call("DELETE", f"/instances/{booted['id']}")


def test_an_uploaded_disk_kernel_and_ramdisk_boot_a_guest(qemu_stack, guest):
    """The tiny image's three files uploaded through the API as a new image boot a guest that
    answers over SSH: the kernel and ramdisk come from the upload, not from a registration."""
    api, key, [source] = guest
    built = os.path.join(qemu_stack.data_dir, "images")
    image = api.call("POST", "/images", 201, json={"name": "tiny-upload", "cmdline": "console=ttyS0 quiet"}).json()
    for part, path in (("kernel", "tiny/vmlinux"), ("ramdisk", "tiny/initrd.img"), ("file", "tiny.qcow2")):
        with open(os.path.join(built, path), "rb") as body:
            answer = api.call("PUT", f"/images/{image['id']}/{part}", 200, data=body,
                              headers={"Content-Type": "application/octet-stream"}).json()
    assert answer["state"] == "active" and answer["boot"] == "kernel"
    flavor = min(api.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    booted = api.call("POST", "/instances", 202, json={"name": "from-upload", "flavor": flavor["id"],
                                                       "image": "tiny-upload", "key": source["key"]}).json()
    try:
        booted = wait_ready(api, booted["id"])
        assert booted["state"] == "running" and booted["image"] == image["id"], booted
        with ssh(booted, key) as client:
            assert run(client, "cat /proc/cmdline").startswith("console=ttyS0 quiet")
    finally:
        api.call("DELETE", f"/instances/{booted['id']}")
