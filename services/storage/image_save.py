"""Saving a stopped instance as an image: its root disk flattened on its host (host agent
`export_volume`) into a new standalone image in the store, bootable like any other. The new image
keeps the parent image's boot kind (kernel, initramfs and command line of a kernel-boot image) and
its minimum memory; its minimum disk is the root disk's size.

Two steps: `record_save` (the RPC) makes the image row `saving` and returns it; `export` (this
service's own `image_save_requested` event) asks the host and checks the file as an upload's
(image_store.activate). A failure leaves no file (the host removes a half-written one, a bad file
is removed here) and the image `error` with the reason; a redelivered event for an image no longer
`saving` does nothing. A save that never ends is swept like an abandoned upload."""
import math
import os

from common.errors import Conflict, HostOperationFailed, InvalidInput
from common.hostrpc import call_host
from services.storage import image_store
from services.storage.disks import GIB, resolve, root_volume_of
from services.storage.models import Image

DEFAULT_EXPORT_TIMEOUT_S = 3600


def record_save(session, actor, request, data_dir):
    root = root_volume_of(session, request["instance_id"])
    if root is None or root.state != "available":
        raise Conflict(f"instance {request['instance_id']} has no root disk to save",
                       {"instance": ["no root disk"]})
    parent = session.get(Image, root.image_id)
    fields = {"name": request["name"], "description": request["description"], "format": "qcow2",
              "size_bytes": 0, "min_disk_gib": max(1, math.ceil(root.capacity_bytes / GIB)),
              "min_memory_mib": parent.min_memory_mib if parent else None,
              "kernel_path": parent.kernel_path if parent else None,
              "initrd_path": parent.initrd_path if parent else None,
              "cmdline": parent.cmdline if parent else None}
    project_id = request["project"] if request["visibility"] == "project" else None
    image = image_store.record_image(session, actor, fields, request["visibility"], project_id, "saving")
    _own_boot_files(session, image, data_dir)
    return image


def _own_boot_files(session, image, data_dir):
    """A parent's uploaded kernel and ramdisk (files of the store) get names of the new image's own
    (hard links: no copy), so deleting either image leaves the other's boot files in place."""
    for part, column in image_store.BOOT_FILE_COLUMN.items():
        inherited = getattr(image, column)
        if inherited and inherited.startswith(image_store.STORE_DIR):
            own = image_store.final_path(image, part, data_dir)
            if not os.path.exists(own):
                os.link(resolve(inherited, data_dir), own)
            setattr(image, column, os.path.relpath(own, os.path.abspath(data_dir)))
    session.commit()


def export(session, hosts, image_id, instance_id, data_dir, inspect, timeout, log):
    image = session.get(Image, image_id)
    if image is None or image.state != "saving":
        return image  # done already (a redelivered event), or swept
    root = root_volume_of(session, instance_id)
    if root is None or root.state != "available":
        image_store.fail(session, image, f"instance {instance_id} lost its root disk before it was saved")
        return image
    part = image_store.part_path(image, data_dir)
    os.makedirs(os.path.dirname(part), exist_ok=True)
    host, name = root.host, root.name
    session.commit()  # nothing open while the host copies
    try:
        call_host(hosts(host).proxy, host, "export_volume", {"name": name, "destination": part}, timeout)
    except HostOperationFailed as exc:
        image_store.remove_quietly(part)
        image_store.fail(session, image, str(exc))
        log.warning("image %s: saving instance %s failed: %s", image_id, instance_id, exc)
        return image
    session.refresh(image)
    if image.state != "saving":  # swept (or deleted) while the host copied: the copy is not wanted
        image_store.remove_quietly(part)
        return image
    try:
        return image_store.activate(session, image, part, data_dir, inspect, "instance")
    except InvalidInput as exc:  # the file was removed and the image is `error`
        log.warning("image %s: the saved disk of instance %s is no image: %s", image_id, instance_id, exc)
        return image
