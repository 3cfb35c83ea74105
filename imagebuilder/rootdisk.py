"""The root disk template: a small ext4 filesystem made with `mkfs.ext4 -d` (no loop mount, no
root needed), converted to qcow2 so the storage service can give each VM a copy-on-write volume.

The guest mounts it on /data; files a teacher adds under /data/ are put here.
"""
import os
import subprocess

DEFAULT_SIZE_MIB = 64


def make_template(staging_dir, raw_path, qcow2_path, size_mib=DEFAULT_SIZE_MIB, label="labcloud-data"):
    os.makedirs(staging_dir, exist_ok=True)
    with open(raw_path, "wb") as f:
        f.truncate(size_mib * 1024 * 1024)
    # -E root_owner: files belong to root whoever builds; no journal-less tricks, the guest writes it.
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", label, "-E", "root_owner=0:0", "-d", staging_dir, raw_path],
                   check=True, capture_output=True)
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", raw_path, qcow2_path], check=True, capture_output=True)
    os.unlink(raw_path)
    return qcow2_path
