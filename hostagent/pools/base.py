"""The interface every pool kind implements. Methods that touch libvirt take the raw connection
(and the started pool) and run in a native thread (HypervisorConnection.run): libvirt, subprocess
and plain Python only. Each is idempotent by volume name, as RPC is delivered at least once."""
from hostagent import storage_pool

DEFAULT_POOL_NAME = "labcloud"


class HostPool:
    kind = None
    disk_format = None  # the format of the volumes it makes for guests (domain XML's driver type)

    def __init__(self, name=DEFAULT_POOL_NAME):
        self.name = name

    @classmethod
    def from_config(cls, config):
        raise NotImplementedError

    def describe(self):
        """What the agent reports of its pool (heartbeat, get_host_info, get_pool_usage)."""
        return {"pool_kind": self.kind, "disk_format": self.disk_format}

    def pool_xml(self):
        raise NotImplementedError

    def ensure(self, conn):
        """The pool, defined from pool_xml() when missing, active and autostarted."""
        raise NotImplementedError

    def image_volume_name(self, image_id, source_format):
        raise NotImplementedError

    def ensure_image(self, conn, pool, image_id, capacity_bytes, source_format, source_path, upload):
        """The volume holding image `image_id` (its content from `source_path` when `upload`)."""
        raise NotImplementedError

    def create_volume(self, conn, pool, name, capacity_bytes, fmt=None, backing_path=None, backing_format=None):
        """An empty volume, or (backing_path) a copy-on-write one over an image volume."""
        raise NotImplementedError

    def clone_volume(self, conn, pool, name, source_name, capacity_bytes=None):
        """A full, independent copy of a volume (a data volume's snapshot, a volume from one)."""
        return storage_pool.clone_volume(conn, pool, name, source_name, capacity_bytes, self.disk_format)

    def grow_volume(self, conn, pool, name, capacity_bytes, can_resize=True):
        raise NotImplementedError
