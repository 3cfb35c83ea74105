"""Storage service: images and root disks. Entry points only; logic is in disks.py."""
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc

from common.db import Database
from common.hostrpc import HostAgentRpc
from common.actors import load_actor
from common.schemas import dump, load
from services.storage import disks, images, moves
from services.storage.schemas import (
    AbortRootDiskMoveRequest, CompleteRootDiskMoveRequest, PreparedRootDiskSchema, PrepareRootDiskMoveRequest,
    CreateRootDiskRequest, DeleteOrphanVolumeRequest, DeleteRootDiskRequest, GrowRootDiskRequest, ImageSchema,
    RegisterImageRequest, RootDiskSchema, VolumeSchema)


class HostFactsProvider(DependencyProvider):
    """Pool names and image copies per host, shared by this container's workers (disks.HostFacts)."""

    def setup(self):
        self.facts = disks.HostFacts()

    def get_dependency(self, worker_ctx):
        return self.facts


class StorageService:
    name = "storage"

    db = Database()
    hosts = HostAgentRpc()
    config = Config()
    inspect_disk = images.DiskInspector()
    host_facts = HostFactsProvider()

    @rpc
    def list_images(self):
        return dump(ImageSchema, disks.list_images(self.db), many=True)

    @rpc
    def register_image(self, actor, request):
        actor = load_actor(actor)
        request = load(RegisterImageRequest, request)
        image = images.register_image(self.db, actor, request, self.config.get("DATA_DIR", "var"),
                                      self.inspect_disk)
        return dump(ImageSchema, image)

    @rpc
    def get_image(self, image_id):
        return dump(ImageSchema, disks.describe_image(disks.find_image(self.db, image_id)))

    @rpc
    def get_boot_files(self, image_id):
        image = disks.find_image(self.db, image_id)
        return disks.boot_files(image, self.config.get("DATA_DIR", "var"))

    @rpc
    def create_root_disk(self, request):
        request = load(CreateRootDiskRequest, request)
        data_dir = self.config.get("DATA_DIR", "var")
        volume = disks.create_root_disk(self.db, self.hosts, request, data_dir, self.host_facts)
        boot = disks.boot_files(disks.find_image(self.db, request["image_id"]), data_dir)
        return dump(RootDiskSchema, {**volume, "boot": boot})

    @rpc
    def grow_root_disk(self, request):
        request = load(GrowRootDiskRequest, request)
        return dump(VolumeSchema, disks.describe_volume(
            disks.grow_root_disk(self.db, self.hosts, request["instance_id"], request["size_gib"])))

    # ----- a live migration moves the root disk (moves.py) -----
    @rpc
    def prepare_root_disk_move(self, request):
        request = load(PrepareRootDiskMoveRequest, request)
        prepared = moves.prepare_move(self.db, self.hosts, request["instance_id"], request["host"],
                                      self.config.get("DATA_DIR", "var"), self.host_facts)
        return dump(PreparedRootDiskSchema, prepared)

    @rpc
    def complete_root_disk_move(self, request):
        request = load(CompleteRootDiskMoveRequest, request)
        return {"moved": moves.complete_move(self.db, self.hosts, request["instance_id"], request["source"],
                                             request["destination"], request["path"])}

    @rpc
    def abort_root_disk_move(self, request):
        request = load(AbortRootDiskMoveRequest, request)
        return {"deleted": moves.abort_move(self.db, self.hosts, request["instance_id"], request["host"])}

    @rpc
    def delete_root_disk(self, request):
        request = load(DeleteRootDiskRequest, request)
        deleted = disks.delete_root_disk(self.db, self.hosts, request["instance_id"])
        return {"deleted": deleted}

    @rpc
    def delete_orphan_volume(self, request):
        request = load(DeleteOrphanVolumeRequest, request)
        return {"deleted": disks.delete_orphan_volume(self.db, self.hosts, request["host"], request["name"])}

    @rpc
    def list_volumes(self, host=None):
        return dump(VolumeSchema, disks.list_volumes(self.db, host), many=True)
