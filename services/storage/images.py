"""Registering images: a course image the builder made (direct kernel boot) or a disk image made
elsewhere (a qcow2 with its own bootloader and cloud-init). Admins only.

Paths are the storage service's: relative to its data dir or absolute; hosts get the disk from
there (ensure_image). A name is registered once: hosts keep their copy of an image under its id,
so "the same name with new content" would leave old copies in use. Register a new name instead.
"""
import json
import math
import subprocess

from nameko.extensions import DependencyProvider
from sqlalchemy.exc import IntegrityError

from common import policy
from common.errors import Conflict, InvalidInput
from services.storage.disks import GIB, describe_image, resolve
from services.storage.models import Image

QEMU_IMG_TIMEOUT_S = 30


def qemu_img_info(path):
    """{'format': ..., 'virtual-size': bytes} of a disk image, or None when it is not one."""
    done = subprocess.run(["qemu-img", "info", "--output=json", path], capture_output=True, text=True,
                          timeout=QEMU_IMG_TIMEOUT_S)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout)


class DiskInspector(DependencyProvider):
    """`inspect(path)` for the service (qemu-img), swappable in tests."""

    def get_dependency(self, worker_ctx):
        return qemu_img_info


def _existing_file(request, field, data_dir):
    path = resolve(request.get(field), data_dir)
    if path is None:
        return None
    try:
        with open(path, "rb"):
            return path
    except OSError as exc:
        raise InvalidInput(f"{field}: cannot read {request[field]}: {exc.strerror}",
                           {field: ["no readable file there"]}) from None


def register_image(session, actor, request, data_dir, inspect):
    policy.enforce(actor, "image:register", what="register images")
    source = _existing_file(request, "source_path", data_dir)
    _existing_file(request, "kernel_path", data_dir)
    _existing_file(request, "initrd_path", data_dir)
    info = inspect(source)
    if info is None or info.get("format") != request["format"]:
        found = "not a disk image" if info is None else f"a {info.get('format')} image"
        raise InvalidInput(f"source_path is {found}, not {request['format']}",
                           {"source_path": [f"expected a {request['format']} image"]})
    if info.get("backing-filename"):
        # Hosts copy only this file, and a backing file named inside an image could be any file
        # of the host: an image must stand alone.
        raise InvalidInput(f"source_path has a backing file ({info['backing-filename']}); make it "
                           "self-contained first (qemu-img convert -O qcow2 SRC DEST)",
                           {"source_path": ["has a backing file"]})
    size_bytes = int(info["virtual-size"])
    min_disk_gib = max(request.get("min_disk_gib") or 1, math.ceil(size_bytes / GIB))
    # Public, version 1: registering by path names a new image (see the module's docstring);
    # new versions of a name come through uploads (image_store.py).
    image = Image(name=request["name"], description=request["description"], format=request["format"],
                  size_bytes=size_bytes, min_disk_gib=min_disk_gib, source_path=request["source_path"],
                  kernel_path=request.get("kernel_path"), initrd_path=request.get("initrd_path"),
                  cmdline=request.get("cmdline"), min_memory_mib=request.get("min_memory_mib"),
                  visibility="public", scope="public", version=1, user_id=actor["id"], state="active")
    session.add(image)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"an image named {request['name']} exists", {"name": ["already registered"]}) from None
    return describe_image(image)
