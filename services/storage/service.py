"""Storage service: images, root disks and data volumes. Entry points only; logic is in disks.py,
moves.py and volumes.py."""
import base64
import binascii
import logging

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from nameko.events import EventDispatcher, event_handler
from nameko.exceptions import UnknownService
from nameko.rpc import RpcProxy, rpc

from common.clock import Clock
from common.db import Database, retry_transient_workers
from common.errors import InvalidInput, NotFound
from common.hostrpc import HostAgentRpc
from common.actors import load_actor
from common.prometheus import ProcessMetrics
from common.schemas import dump, load
from common.timers import config_timer
from services.storage import disks, image_access, image_save, image_store, images, moves, orphans, volumes
from services.storage.schemas import (
    AbortRootDiskMoveRequest, CompleteRootDiskMoveRequest, PreparedRootDiskSchema, PrepareRootDiskMoveRequest,
    CreateRootDiskRequest, DeleteOrphanVolumeRequest, DeleteRootDiskRequest, GrowRootDiskRequest, ImageSchema,
    RegisterImageRequest, RootDiskGrowthQuery, RootDiskSchema, VolumeSchema)
from services.storage.schemas import (
    AttachedVolumeSchema, AttachVolumeRequest, CreateSnapshotRequest, CreateVolumeRequest, DataVolumeSchema,
    CheckHostVolumesRequest, DeleteUnownedVolumeRequest, ListSnapshotsRequest, ListVolumesRequest,
    ReleaseInstanceVolumesRequest, SnapshotSchema, StoragePoolSchema, UserDeletedSchema)
from services.storage.schemas import NewImageRequest, SaveInstanceImageRequest, UploadChunkRequest, UploadPartRequest

log = logging.getLogger(__name__)


class HostFactsProvider(DependencyProvider):
    """Pool names and image copies per host, shared by this container's workers (disks.HostFacts)."""

    def setup(self):
        self.facts = disks.HostFacts()

    def get_dependency(self, worker_ctx):
        return self.facts


@retry_transient_workers
class StorageService:
    name = "storage"
    prometheus = ProcessMetrics()  # served on PROMETHEUS_PORT (common/prometheus.py)

    db = Database()
    hosts = HostAgentRpc()
    config = Config()
    inspect_disk = images.DiskInspector()
    host_facts = HostFactsProvider()
    instances = RpcProxy("instances")
    accounts = RpcProxy("accounts")
    now = Clock()
    dispatch = EventDispatcher()

    @rpc
    def list_images(self, actor=None):
        """The images the actor may see (any state but deleted); without an actor (internal
        callers) every active image."""
        if actor is None:
            return dump(ImageSchema, disks.list_images(self.db), many=True)
        shown = image_access.visible_images(self.db, load_actor(actor))
        return dump(ImageSchema, [disks.describe_image(i) for i in shown], many=True)

    @rpc
    def show_image(self, actor, image_id):
        return dump(ImageSchema, disks.describe_image(image_access.visible_image(self.db, load_actor(actor),
                                                                                 image_id)))

    @rpc
    def find_boot_image(self, actor, reference):
        """The image an instance create names: an id, or a name (its newest active version the
        actor may see). NotFound or InvalidInput name `image`."""
        if not isinstance(reference, (int, str)) or isinstance(reference, bool):
            raise InvalidInput("image: an id or a name", {"image": ["an id or a name"]})
        return dump(ImageSchema, disks.describe_image(image_access.for_boot(self.db, load_actor(actor), reference)))

    # ----- uploads (image_store.py): the gateway relays the body in chunks -----
    @rpc
    def create_image(self, actor, request):
        """POST /images: a queued image to upload, or (with source_path) a registration by path.
        A repeat makes another version: the client creates once, then retries only the upload."""
        raw = request if isinstance(request, dict) else {}
        request = load(NewImageRequest, request)
        if request["source_path"]:
            if raw.get("visibility", "public") != "public" or raw.get("project") is not None:
                raise InvalidInput("an image registered by path is public", {"visibility": ["only public"]})
            return self.register_image(actor, {k: v for k, v in raw.items() if k not in ("visibility", "project")})
        return dump(ImageSchema, disks.describe_image(image_store.create_image(self.db, load_actor(actor), request)))

    @rpc
    def start_image_upload(self, actor, image_id, length=None, part="file"):
        part = load(UploadPartRequest, {"part": part})["part"]
        image = image_store.start_upload(self.db, load_actor(actor), image_id, length, self._data_dir,
                                         self._max_image_bytes, part)
        return dump(ImageSchema, disks.describe_image(image))

    @rpc
    def upload_image_chunk(self, actor, image_id, offset, data, part="file"):
        chunk = load(UploadChunkRequest, {"offset": offset, "data": data, "part": part})
        try:
            raw = base64.b64decode(chunk["data"], validate=True)
        except binascii.Error:
            raise InvalidInput("data: not base64", {"data": ["not base64"]}) from None
        image_store.write_chunk(self.db, load_actor(actor), image_id, chunk["offset"], raw, self._data_dir,
                                self._max_image_bytes, chunk["part"])
        return {"written": len(raw)}

    @rpc
    def finish_image_upload(self, actor, image_id, length, part="file"):
        part = load(UploadPartRequest, {"part": part})["part"]
        image = image_store.finish_upload(self.db, load_actor(actor), image_id, length, self._data_dir,
                                          self.inspect_disk, part)
        return dump(ImageSchema, disks.describe_image(image))

    @rpc
    def delete_image(self, actor, image_id):
        image = image_store.delete_image(self.db, load_actor(actor), image_id, self._data_dir)
        described = disks.describe_image(image)
        self.db.commit()
        # The hosts' copies go in the background: a host that does not answer must not hold up the
        # caller (the gateway's RPC would time out first). A copy a host keeps anyway is an orphan
        # for reconcile (check_host_volumes: a deleted image's copies are nobody's).
        self.dispatch("image_deleted", {"image_id": image.id})
        return dump(ImageSchema, described)

    @event_handler("storage", "image_deleted")
    def on_image_deleted(self, payload):
        image = image_store.deleted_image(self.db, payload["image_id"])
        if image is None:
            return  # not (or no longer) deleted: nothing to forget
        self.db.commit()  # nothing open while the hosts answer
        try:
            listed = self.instances.list_hosts()
        except UnknownService:
            log.warning("image %s deleted while the instances service is down: reconcile removes the hosts' "
                        "copies", image.id)
            listed = []
        image_store.forget_host_copies(self.hosts, listed, image, self.host_facts, log)

    # ----- save an instance as an image (image_save.py) -----
    @rpc
    def save_instance_image(self, actor, request):
        """Internal (the instances service, once the instance is stopped and the actor may save
        it): the new image `saving`; the host's copy is made on this service's own event."""
        request = load(SaveInstanceImageRequest, request)
        image = image_save.record_save(self.db, load_actor(actor), request, self._data_dir)
        self.dispatch("image_save_requested", {"image_id": image.id, "instance_id": request["instance_id"]})
        return dump(ImageSchema, disks.describe_image(image))

    @event_handler("storage", "image_save_requested")
    def on_image_save_requested(self, payload):
        timeout = float(self.config.get("IMAGE_EXPORT_TIMEOUT", image_save.DEFAULT_EXPORT_TIMEOUT_S))
        image_save.export(self.db, self.hosts, payload["image_id"], payload["instance_id"], self._data_dir,
                          self.inspect_disk, timeout, log)

    @config_timer("IMAGE_SWEEP_INTERVAL", 300)
    def sweep_image_uploads(self):
        timeout = float(self.config.get("IMAGE_UPLOAD_TIMEOUT", image_store.DEFAULT_UPLOAD_TIMEOUT_S))
        for image_id in image_store.sweep_abandoned(self.db, self._data_dir, self.now(), timeout):
            log.info("image %s: upload abandoned, its file removed", image_id)

    @property
    def _data_dir(self):
        return self.config.get("DATA_DIR", "var")

    @property
    def _max_image_bytes(self):
        return int(self.config.get("IMAGE_MAX_BYTES", image_store.DEFAULT_MAX_BYTES))

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
    def root_disk_growth(self, instance_id):
        """Internal (a resize, before anything changes): {growable, reason}."""
        return disks.root_disk_growth(self.db, load(RootDiskGrowthQuery, {"instance_id": instance_id})["instance_id"])

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
                                             request["destination"], request["path"], self.host_facts)}

    @rpc
    def abort_root_disk_move(self, request):
        request = load(AbortRootDiskMoveRequest, request)
        return {"deleted": moves.abort_move(self.db, self.hosts, request["instance_id"], request["host"],
                                            self.host_facts)}

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
    def check_host_volumes(self, request):
        """Internal (reconcile): a host pool's names against the records, both ways."""
        request = load(CheckHostVolumesRequest, request)
        host, names = request["host"], request["names"]
        missing = orphans.mark_missing(self.db, host, names, request["listed_at"])
        return {"unowned": orphans.unowned(self.db, host, names), "missing_volumes": missing}

    @rpc
    def delete_unowned_volume(self, request):
        """Internal (reconcile, after its grace period): delete it unless a record owns it now."""
        request = load(DeleteUnownedVolumeRequest, request)
        return orphans.delete_unowned(self.db, self.hosts, request["host"], request["name"])

    @rpc
    def list_volumes(self, host=None):
        return dump(VolumeSchema, disks.list_volumes(self.db, host), many=True)

    # ----- data volumes and snapshots (volumes.py) -----
    @rpc
    def create_volume(self, actor, request):
        actor = load_actor(actor)
        request = load(CreateVolumeRequest, request)
        project_id, snapshot, image, size_gib = volumes.plan_create(self.db, actor, request)
        existing = volumes.named_volume(self.db, project_id, request["name"])
        if existing is not None:
            host = existing.host
        elif snapshot is not None:
            host = snapshot.host
        elif request["instance"] is not None:
            host = self._instance(actor, request["instance"])["host"] or volumes.pick_host(
                self.instances.list_hosts(), size_gib)
        else:
            host = volumes.pick_host(self.instances.list_hosts(), size_gib)
        disk_format = None
        if existing is None:  # a repeat of a create made already needs no room of its own
            volumes.check_fits(self.db, self.hosts(host).get_pool_usage(), size_gib)
            disk_format = disks.host_disk_format(self.hosts, host, self.host_facts)  # the name follows it
        limits = self.accounts.get_quota_limits(project_id, actor["id"])
        volume = volumes.record_volume(self.db, actor, request, project_id, size_gib, host, limits, snapshot, image,
                                       disk_format=disk_format)
        volume = volumes.make_on_host(self.db, self.hosts, volume, self.config.get("DATA_DIR", "var"),
                                      self.host_facts, snapshot, image)
        return dump(DataVolumeSchema, volumes.describe(volume))

    @rpc
    def list_data_volumes(self, actor, request=None):
        request = load(ListVolumesRequest, request or {})
        found = volumes.list_volumes(self.db, load_actor(actor), **request)
        return dump(DataVolumeSchema, [volumes.describe(v) for v in found], many=True)

    @rpc
    def get_volume(self, actor, volume_id):
        return dump(DataVolumeSchema, volumes.describe(volumes.visible_volume(self.db, load_actor(actor), volume_id)))

    @rpc
    def attach_volume(self, actor, volume_id, request):
        actor = load_actor(actor)
        request = load(AttachVolumeRequest, request)
        volume = volumes.visible_volume(self.db, actor, volume_id, "volume:attach")
        instance_id = request["instance"]
        if not (volume.instance_id == instance_id and volume.attach_state == "attached"):
            self.db.commit()  # nothing open while the instances service answers
            volumes.check_attachable(volume, self._instance(actor, instance_id))
            volume = volumes.claim_attachment(self.db, volume, instance_id, self.now())
            volume = volumes.plug(self.db, self.hosts, volume)
        return dump(DataVolumeSchema, volumes.describe(volume))

    @rpc
    def detach_volume(self, actor, volume_id):
        volume = volumes.visible_volume(self.db, load_actor(actor), volume_id, "volume:detach")
        if volumes.start_detach(self.db, volume):
            volume = volumes.unplug(self.db, self.hosts, volume)
        return dump(DataVolumeSchema, volumes.describe(volume))

    @rpc
    def delete_volume(self, actor, volume_id):
        volume = volumes.visible_volume(self.db, load_actor(actor), volume_id, "volume:delete")
        described = volumes.describe(volume)
        volumes.delete_volume(self.db, self.hosts, volume)
        return dump(DataVolumeSchema, {**described, "state": "deleted"})

    @rpc
    def create_snapshot(self, actor, volume_id, request):
        actor = load_actor(actor)
        request = load(CreateSnapshotRequest, request)
        volume = volumes.visible_volume(self.db, actor, volume_id, "volume:snapshot")
        snapshot = volumes.record_snapshot(self.db, actor, volume, request["name"])
        snapshot = volumes.make_snapshot(self.db, self.hosts, snapshot, volume)
        return dump(SnapshotSchema, volumes.describe_snapshot(snapshot))

    @rpc
    def list_snapshots(self, actor, request=None):
        request = load(ListSnapshotsRequest, request or {})
        found = volumes.list_snapshots(self.db, load_actor(actor), **request)
        return dump(SnapshotSchema, [volumes.describe_snapshot(s) for s in found], many=True)

    @rpc
    def get_snapshot(self, actor, snapshot_id):
        snapshot = volumes.visible_snapshot(self.db, load_actor(actor), snapshot_id)
        return dump(SnapshotSchema, volumes.describe_snapshot(snapshot))

    @rpc
    def delete_snapshot(self, actor, snapshot_id):
        snapshot = volumes.visible_snapshot(self.db, load_actor(actor), snapshot_id, "snapshot:delete")
        described = volumes.describe_snapshot(snapshot)
        volumes.delete_snapshot(self.db, self.hosts, snapshot)
        return dump(SnapshotSchema, {**described, "state": "deleted"})

    @rpc
    def list_pools(self, actor, host=None):
        """Admins: each up host's pool (or only `host`'s: the portal's host page), its kind and
        libvirt's figures, and what its data volumes are promised."""
        pools = volumes.pool_report(self.db, self.hosts, self.instances.list_hosts, load_actor(actor), host)
        return dump(StoragePoolSchema, pools, many=True)

    @rpc
    def list_instance_volumes(self, instance_id):
        """Internal (the gateway, after get_instance let the actor see the instance)."""
        attached = volumes.instance_volumes(self.db, load(ReleaseInstanceVolumesRequest,
                                                          {"instance_id": instance_id})["instance_id"])
        return dump(AttachedVolumeSchema, [volumes.describe(v) for v in attached], many=True)

    @rpc
    def release_instance_volumes(self, request):
        """Internal: the instances service's delete, once the domain is gone."""
        request = load(ReleaseInstanceVolumesRequest, request)
        return {"released": volumes.release_instance_volumes(self.db, request["instance_id"])}

    @rpc
    def get_project_usage(self, project_id):
        """Internal: {"project": {volumes, volume_gib}, "users": {"<user id>": {...}}}."""
        usage = volumes.project_usage(self.db, project_id)
        return {"project": usage["project"], "users": {str(k): v for k, v in usage["users"].items()}}

    @event_handler("accounts", "user_deleted")
    def on_user_deleted(self, payload):
        event = UserDeletedSchema(unknown="exclude").load(payload)
        if event["transfer_to"] is not None:
            volumes.transfer_volumes(self.db, event["user_id"], event["transfer_to"])

    @config_timer("VOLUME_RECONCILE_INTERVAL", 60)
    def reconcile_volumes(self):
        for kind, row_id, action in volumes.reconcile(self.db, self.hosts, self.now()):
            log.info("reconcile: %s %s %s", kind, row_id, action)

    def _instance(self, actor, instance_id):
        """The instance as the instances service shows it to the actor; NotFound names `instance`."""
        try:
            return self.instances.get_instance(actor, instance_id)
        except NotFound as exc:
            raise NotFound(str(exc), {"instance": ["no such instance"]}) from None
