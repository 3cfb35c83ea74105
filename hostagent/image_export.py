"""Saving an instance as an image, on its host: its root disk (a qcow2 over the image's copy in the
pool) flattened into one standalone qcow2 file, written where the storage service asks (its image
store; hosts reach the store's files at the same paths, as ensure_image reads them).

`qemu-img convert` reads the disk under qemu's image lock, so the domain cannot start writing it
meanwhile (its start fails on the lock instead of corrupting the copy). The test driver's volumes
have no file: there the export is an empty qcow2 of the disk's size, so the rest of the path
(storage's checks, the new image) runs the same in fast tests.
"""
import os
import subprocess

from common.errors import HostOperationFailed
from hostagent import storage_pool

CONVERT_TIMEOUT_S = 3600


def volume_source(pool, name):
    """(path, capacity bytes) of the pool's volume `name`; HostOperationFailed when there is none."""
    volume = storage_pool.find_volume(pool, name)
    if volume is None:
        raise HostOperationFailed(f"no volume {name} in pool {pool.name()}")
    return volume.path(), volume.info()[1]


def export(source, capacity_bytes, destination, fake=False):
    """Write the flattened copy of `source` to `destination` (made anew: a repeat rewrites it).
    Runs in a native thread (blocking). Nothing is left at `destination` when it fails."""
    if fake:
        command = ["qemu-img", "create", "-q", "-f", "qcow2", destination, str(capacity_bytes)]
    else:
        command = ["qemu-img", "convert", "-O", "qcow2", source, destination]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _remove(destination)
        raise HostOperationFailed(f"qemu-img took longer than {CONVERT_TIMEOUT_S} s exporting {source}") from None
    if done.returncode != 0:
        _remove(destination)
        raise HostOperationFailed(f"qemu-img could not export {source}: {done.stderr.strip()[-300:]}")
    return {"path": destination, "bytes": os.path.getsize(destination)}


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
