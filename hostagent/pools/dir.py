"""The `dir` pool: qcow2 files in one directory (POOL_PATH). An image is `image-<id>.<format>`
uploaded as it is; a root disk or an image-based data volume is a qcow2 whose backing file is the
image's; a snapshot is a flattened qcow2 copy; grow is libvirt's resize (qemu-img resize)."""
from hostagent import storage_pool
from hostagent.pools.base import DEFAULT_POOL_NAME, HostPool

DEFAULT_POOL_PATH = "var/pools/host1"


class DirPool(HostPool):
    kind = "dir"
    disk_format = "qcow2"

    def __init__(self, name=DEFAULT_POOL_NAME, path=DEFAULT_POOL_PATH):
        super().__init__(name)
        self.path = path

    @classmethod
    def from_config(cls, config):
        return cls(config.get("POOL_NAME") or DEFAULT_POOL_NAME, config.get("POOL_PATH") or DEFAULT_POOL_PATH)

    def pool_xml(self):
        return storage_pool.dir_pool_xml(self.name, self.path)

    def ensure(self, conn):
        return storage_pool.ensure_pool(conn, self.name, self.path)

    def image_volume_name(self, image_id, source_format):
        return storage_pool.image_volume_name(image_id, source_format)

    def ensure_image(self, conn, pool, image_id, capacity_bytes, source_format, source_path, upload):
        return storage_pool.ensure_image(conn, pool, image_id, capacity_bytes, source_format, source_path, upload)

    def create_volume(self, conn, pool, name, capacity_bytes, fmt=None, backing_path=None, backing_format=None):
        return storage_pool.create_volume(conn, pool, name, capacity_bytes, fmt or self.disk_format,
                                          backing_path, backing_format)

    def grow_volume(self, conn, pool, name, capacity_bytes, can_resize=True):
        return storage_pool.grow_volume(conn, pool, name, capacity_bytes, can_resize)
