"""The `logical` pool: an LVM volume group (STORAGE_VG) that the host's administrator made
(`pvcreate`, `vgcreate`). The agent defines a libvirt pool over it and never builds it: building a
logical pool runs pvcreate on its devices, wiping them.

- image: a raw LV `image-<id>` holding the template. A qcow2 template is converted on the host
  (`qemu-img convert -O raw` into a scratch file) and its raw bytes uploaded through libvirt's
  volume upload.
- root disk (and a data volume made from an image): an LVM snapshot of the image's LV. Its volume
  XML names the image LV as <backingStore>; libvirt 9.0 then runs
  `lvcreate --name <name> -L <capacity>K -s /dev/<VG>/image-<id>` (read from its error message on
  a machine without device-mapper). -L sizes the snapshot's copy-on-write area; the disk the guest
  sees is the image's size, as an LVM snapshot is never larger than its origin.
- data volume: a plain LV (`lvcreate --name <name> -L <size>K <VG>`).
- snapshot of a data volume: a full copy into a new LV (createXMLFrom), independent of its source
  (a classic LVM snapshot would slow its origin's writes and be lost when its area fills).
- grow: `lvextend -L <size>K /dev/<VG>/<name>` (libvirt 9.0's logical backend cannot resize a
  volume), then a pool refresh so libvirt reads the new size. A root disk (a snapshot) cannot
  grow: lvextend would only enlarge its copy-on-write area.
Every volume is raw: the domain's disk driver type is `raw`, its source the LV's block device.
"""
import math
import os
import subprocess
import tempfile
import xml.etree.ElementTree as ET

from common.errors import Conflict, HostOperationFailed, InvalidInput, NotFound
from hostagent import storage_pool
from hostagent.pools.base import DEFAULT_POOL_NAME, HostPool

DEFAULT_VG = "labcloud"
COMMAND_TIMEOUT_S = 3600  # converting a large image or extending an LV: bounded, never forever


def run_command(argv):
    """Run a host command (qemu-img, lvextend); a failure is a HostOperationFailed with its stderr."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HostOperationFailed(f"{argv[0]}: {exc}") from None
    if done.returncode != 0:
        raise HostOperationFailed(f"{' '.join(argv)} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return done.stdout


def size_argument(capacity_bytes):
    """An LVM size in KiB, rounded up (as libvirt passes lvcreate's -L)."""
    return f"{math.ceil(capacity_bytes / 1024)}K"


def is_snapshot(volume):
    """True for an LVM snapshot LV: libvirt shows its origin as <backingStore>."""
    return ET.fromstring(volume.XMLDesc(0)).findtext("backingStore/path") is not None


class LogicalPool(HostPool):
    kind = "logical"
    disk_format = "raw"

    def __init__(self, name=DEFAULT_POOL_NAME, vg=DEFAULT_VG, devices=(), run=run_command, scratch_dir=None):
        """`devices`: the VG's physical volumes, recorded in the pool's definition (optional: libvirt
        finds the VG by name). `run` runs host commands (tests capture them). `scratch_dir` holds an
        image while it is converted to raw (default: the system's temporary directory)."""
        super().__init__(name)
        self.vg, self.devices, self.run, self.scratch_dir = vg, tuple(devices), run, scratch_dir

    @classmethod
    def from_config(cls, config):
        devices = [d.strip() for d in (config.get("STORAGE_DEVICES") or "").split(",") if d.strip()]
        return cls(config.get("POOL_NAME") or DEFAULT_POOL_NAME, config.get("STORAGE_VG") or DEFAULT_VG, devices,
                   scratch_dir=config.get("STORAGE_SCRATCH_DIR") or None)

    @property
    def target_path(self):
        return f"/dev/{self.vg}"

    def pool_xml(self):
        pool = ET.Element("pool", type="logical")
        ET.SubElement(pool, "name").text = self.name
        source = ET.SubElement(pool, "source")
        for device in self.devices:
            ET.SubElement(source, "device", path=device)
        ET.SubElement(source, "name").text = self.vg
        ET.SubElement(source, "format", type="lvm2")
        ET.SubElement(ET.SubElement(pool, "target"), "path").text = self.target_path
        return ET.tostring(pool, encoding="unicode")

    def ensure(self, conn):
        # Never built: the VG is the administrator's (a build would pvcreate its devices).
        return storage_pool.define_and_start(conn, self.name, self.pool_xml(), build=False)

    def image_volume_name(self, image_id, source_format):
        return f"image-{image_id}"  # always raw, whatever the template's format

    def ensure_image(self, conn, pool, image_id, capacity_bytes, source_format, source_path, upload):
        """The raw LV `image-<id>`; a qcow2 template is converted to raw on this host first. Callers
        serialise calls on one pool (the agent's pool lock), as for the dir pool."""
        name = self.image_volume_name(image_id, source_format)
        volume = storage_pool.find_volume(pool, name)
        if volume is not None:
            return storage_pool.volume_info(volume)
        if not (upload and source_path):
            return storage_pool.volume_info(pool.createXML(storage_pool.volume_xml(name, capacity_bytes, "raw"), 0))
        if not os.path.isfile(source_path):
            raise HostOperationFailed(f"image {image_id}: source {source_path} is not a file on this host")
        with tempfile.TemporaryDirectory(prefix="labcloud-image-", dir=self.scratch_dir) as scratch:
            raw_path = self._raw_copy(source_path, source_format, scratch)
            size = max(capacity_bytes, os.path.getsize(raw_path))
            volume = pool.createXML(storage_pool.volume_xml(name, size, "raw"), 0)
            try:
                storage_pool.upload_file(conn, volume, raw_path)
            except Exception:
                volume.delete(0)  # never leave a half-written template that later calls would reuse
                raise
        return storage_pool.volume_info(volume)

    def _raw_copy(self, source_path, source_format, scratch):
        if source_format == "raw":
            return source_path
        raw_path = os.path.join(scratch, "image.raw")
        self.run(["qemu-img", "convert", "-f", source_format, "-O", "raw", source_path, raw_path])
        return raw_path

    def create_volume(self, conn, pool, name, capacity_bytes, fmt=None, backing_path=None, backing_format=None):
        """A plain LV, or (backing_path: an image LV) an LVM snapshot of it."""
        if (fmt or self.disk_format) != self.disk_format:
            raise InvalidInput(f"a logical pool holds raw volumes, not {fmt}", {"format": ["raw on a logical pool"]})
        return storage_pool.create_volume(conn, pool, name, capacity_bytes, self.disk_format, backing_path,
                                          self.disk_format if backing_path else None)

    def grow_volume(self, conn, pool, name, capacity_bytes, can_resize=True):
        """lvextend, then a refresh. `can_resize` false (the test driver, which runs no command and
        keeps volumes in memory): the LV is made again, larger."""
        volume = storage_pool.find_volume(pool, name)
        if volume is None:
            raise NotFound(f"no volume {name} on this host")
        if volume.info()[1] >= capacity_bytes:
            return storage_pool.volume_info(volume)
        if is_snapshot(volume):
            raise Conflict(f"{name} is an LVM snapshot of its image: its size is the image's and cannot grow "
                           "on a logical pool", {"size_gib": ["a root disk on a logical pool keeps its image's size"]})
        if not can_resize:
            volume.delete(0)
            return self.create_volume(conn, pool, name, capacity_bytes)
        self.run(["lvextend", "-L", size_argument(capacity_bytes), volume.path()])
        pool.refresh(0)  # libvirt reads LV sizes on a refresh (lvs)
        return storage_pool.volume_info(pool.storageVolLookupByName(name))
