"""RPC payloads of the storage service."""
from marshmallow import ValidationError, fields, validate, validates_schema

from common.hostrpc import HOST_NAME_PATTERN
from common.schemas import Id, StrictSchema, UtcDateTime, UuidString


class ImageSchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    version = fields.Integer(metadata={"description": "1, 2, ... per name in its scope (public, a course, "
                                                      "an owner); booting by name takes the newest"})
    description = fields.String()
    format = fields.String()
    size_bytes = fields.Integer(metadata={"description": "virtual size of the disk"})
    file_bytes = fields.Integer(allow_none=True, metadata={"description": "the file's length in the store"})
    checksum = fields.String(allow_none=True, metadata={"description": "sha256 of the file"})
    min_disk_gib = fields.Integer()
    min_memory_mib = fields.Integer(allow_none=True)
    visibility = fields.String(metadata={"description": "public, project (a course) or private (its owner)"})
    project = fields.Integer(allow_none=True, metadata={"description": "visibility project: the course"})
    user_id = fields.Integer(allow_none=True, metadata={"description": "who made it"})
    state = fields.String(metadata={"description": "queued (no file yet), uploading, saving, active, error"})
    reason = fields.String(allow_none=True, metadata={"description": "state error: why"})
    # "kernel": the labcloud image builder's direct kernel boot; "disk": its own bootloader.
    boot = fields.String()
    created_at = UtcDateTime()


IMAGE_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
PATH_FIELD = dict(validate=validate.Length(min=1, max=1024))


class RegisterImageRequest(StrictSchema):
    """Paths are on the storage service's machine: relative to its data dir, or absolute."""
    name = fields.String(required=True, validate=validate.Regexp(
        IMAGE_NAME, error="lower-case letters, digits and '-', at most 63"))
    description = fields.String(load_default="", validate=validate.Length(max=255))
    source_path = fields.String(required=True, **PATH_FIELD)
    format = fields.String(load_default="qcow2", validate=validate.OneOf(["qcow2", "raw"]))
    min_disk_gib = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2048))
    min_memory_mib = fields.Integer(load_default=None, validate=validate.Range(min=16, max=1 << 20))
    # Direct kernel boot (images from `labcloud image build`); without a kernel the disk boots.
    kernel_path = fields.String(load_default=None, **PATH_FIELD)
    initrd_path = fields.String(load_default=None, **PATH_FIELD)
    cmdline = fields.String(load_default=None, validate=validate.Length(max=1024))

    @validates_schema
    def boot_files_need_a_kernel(self, data, **_kwargs):
        if not data.get("kernel_path"):
            given = [f for f in ("initrd_path", "cmdline") if data.get(f)]
            if given:
                raise ValidationError("only with kernel_path (direct kernel boot)", given[0])


class CreateImageRequest(StrictSchema):
    """An image to upload: its metadata now (state queued), its file next (PUT .../file)."""
    name = fields.String(required=True, validate=validate.Regexp(
        IMAGE_NAME, error="lower-case letters, digits and '-', at most 63"),
        metadata={"description": "a name uploaded again becomes its next version"})
    description = fields.String(load_default="", validate=validate.Length(max=255))
    format = fields.String(load_default="qcow2", validate=validate.OneOf(["qcow2", "raw"]),
                           metadata={"description": "the file must be this format (qemu-img checks)"})
    visibility = fields.String(load_default="private", validate=validate.OneOf(["public", "project", "private"]),
                               metadata={"description": "public (admins), project (a course's managers), "
                                                        "private (default)"})
    project = Id(load_default=None, metadata={"description": "visibility project: the course"})
    min_disk_gib = fields.Integer(load_default=None, strict=True, validate=validate.Range(min=1, max=2048),
                                  metadata={"description": "never below the disk's virtual size"})
    min_memory_mib = fields.Integer(load_default=None, strict=True, validate=validate.Range(min=16, max=1 << 20))


class NewImageRequest(CreateImageRequest):
    """POST /images: an image to upload (its file next, PUT .../file), or, with `source_path`, an
    administrator's registration of a file on the storage service's machine (RegisterImageRequest:
    public, version 1)."""
    source_path = fields.String(load_default=None, **PATH_FIELD, metadata={
        "description": "admins: a file on the storage service's machine, registered at once"})
    kernel_path = fields.String(load_default=None, **PATH_FIELD)
    initrd_path = fields.String(load_default=None, **PATH_FIELD)
    cmdline = fields.String(load_default=None, validate=validate.Length(max=1024), metadata={
        "description": "direct kernel boot: the kernel's command line (an upload's kernel: PUT .../kernel)"})

    @validates_schema
    def boot_files_only_by_path(self, data, **_kwargs):
        if not data.get("source_path"):
            given = [f for f in ("kernel_path", "initrd_path") if data.get(f)]
            if given:
                raise ValidationError("only with source_path (registering a file by path)", given[0])


UPLOAD_PART = fields.String(load_default="file", validate=validate.OneOf(["file", "kernel", "ramdisk"]))


class UploadChunkRequest(StrictSchema):
    """Internal (the gateway relays a PUT body): bytes at an offset of the image's file (the disk,
    or its kernel or ramdisk for direct kernel boot)."""
    offset = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    data = fields.String(required=True, metadata={"description": "base64"})
    part = UPLOAD_PART


class UploadPartRequest(StrictSchema):
    """Internal: which file of the image an upload's start or finish is about."""
    part = UPLOAD_PART


class SaveInstanceImageRequest(StrictSchema):
    """Internal (the instances service, for a stopped instance): its root disk as a new image."""
    instance_id = UuidString(required=True)
    name = fields.String(required=True, validate=validate.Regexp(
        IMAGE_NAME, error="lower-case letters, digits and '-', at most 63"))
    visibility = fields.String(load_default="project", validate=validate.OneOf(["public", "project", "private"]))
    project = Id(required=True)
    description = fields.String(load_default="", validate=validate.Length(max=255))


class CreateRootDiskRequest(StrictSchema):
    instance_id = UuidString(required=True)
    image_id = fields.Integer(required=True, validate=validate.Range(min=1))
    host = fields.String(required=True, validate=validate.Regexp(HOST_NAME_PATTERN))
    size_gib = fields.Integer(required=True, validate=validate.Range(min=1, max=2048))


class GrowRootDiskRequest(StrictSchema):
    """A resize: the instance's root disk grows to size_gib (never shrinks)."""
    instance_id = UuidString(required=True)
    size_gib = fields.Integer(required=True, validate=validate.Range(min=1, max=2048))


class RootDiskGrowthQuery(StrictSchema):
    """Can this instance's root disk grow? (a resize asks before it changes anything)"""
    instance_id = UuidString(required=True)


class DeleteRootDiskRequest(StrictSchema):
    instance_id = UuidString(required=True)


# The names storage gives a host pool's volumes besides root disks: a data volume or snapshot by
# uuid (volumes.py), an image's cached copy by the image's id (hostagent/storage_pool.py); the
# suffix follows the pool's format.
DATA_OR_SNAPSHOT_NAME = r"^(?:data|snap)-[0-9a-f-]{36}(?:\.(?:qcow2|raw))?$"
IMAGE_COPY_NAME = r"^image-(\d+)(?:\.(?:qcow2|raw))?$"
STORAGE_VOLUME_NAME = f"{DATA_OR_SNAPSHOT_NAME}|{IMAGE_COPY_NAME}"


class CheckHostVolumesRequest(StrictSchema):
    """A host pool's volume names as listed at `listed_at` (reconcile): which of storage's names
    does no record own, and which recorded data volumes are not there?"""
    host = fields.String(required=True, validate=validate.Regexp(HOST_NAME_PATTERN))
    names = fields.List(fields.String(validate=validate.Length(max=255)), required=True)
    listed_at = UtcDateTime(required=True)


class DeleteUnownedVolumeRequest(StrictSchema):
    """A data volume, snapshot or image copy reconcile found unowned for its grace period."""
    host = fields.String(required=True, validate=validate.Regexp(HOST_NAME_PATTERN))
    name = fields.String(required=True, validate=validate.Regexp(
        STORAGE_VOLUME_NAME, error="only data-*, snap-* or image-* volumes"))


class DeleteOrphanVolumeRequest(StrictSchema):
    """A root disk found on a host that no live instance owns (reconcile)."""
    host = fields.String(required=True, validate=validate.Regexp(HOST_NAME_PATTERN))
    name = fields.String(required=True, validate=validate.Regexp(
        r"^root-[0-9a-f-]{36}(\.qcow2)?$", error="only root disks (root-<instance id>[.qcow2])"))


class VolumeSchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    host = fields.String()
    pool = fields.String(allow_none=True)
    path = fields.String(allow_none=True)
    capacity_bytes = fields.Integer()
    image_id = fields.Integer(allow_none=True)
    instance_id = fields.String(allow_none=True)
    state = fields.String()
    created_at = UtcDateTime()


class BootFilesSchema(StrictSchema):
    """Direct kernel boot (internal: absolute paths on the hosts)."""
    kernel = fields.String()
    initrd = fields.String(allow_none=True)
    cmdline = fields.String()


class RootDiskSchema(VolumeSchema):
    """create_root_disk's answer: the disk, and how the image boots (null: from the disk itself),
    so the create saga needs one call for both."""
    boot = fields.Nested(BootFilesSchema, allow_none=True)


class PrepareRootDiskMoveRequest(StrictSchema):
    """A migration: the root disk's empty top layer on `host`, over that host's copy of the image."""
    instance_id = UuidString(required=True)
    host = fields.String(required=True, validate=validate.Regexp(HOST_NAME_PATTERN))


class PreparedRootDiskSchema(StrictSchema):
    path = fields.String()
    capacity_bytes = fields.Integer()


class CompleteRootDiskMoveRequest(StrictSchema):
    """After a migration: the disk is the copy on `destination`; the one on `source` goes."""
    instance_id = UuidString(required=True)
    source = fields.String(required=True, validate=validate.Regexp(HOST_NAME_PATTERN))
    destination = fields.String(required=True, validate=validate.Regexp(HOST_NAME_PATTERN))
    path = fields.String(required=True, **PATH_FIELD)


class AbortRootDiskMoveRequest(StrictSchema):
    """After a failed migration: the copy on `host` goes (unless it is the disk)."""
    instance_id = UuidString(required=True)
    host = fields.String(required=True, validate=validate.Regexp(HOST_NAME_PATTERN))


# ----- data volumes and snapshots (services/storage/volumes.py) --------------------------------------

VOLUME_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
VOLUME_NAME_ERROR = "letters, digits, '_', '.', '-'; at most 64, starting with a letter or digit"
SIZE_GIB = validate.Range(min=1, max=2048)


class CreateVolumeRequest(StrictSchema):
    """A data volume: empty (`size_gib`), a copy of a snapshot, or copy-on-write over an image
    (`size_gib` then at least the source's; left out: the source's). It is made on the host of
    the snapshot, of `instance` (to attach it there next), or else on the host with most room."""
    name = fields.String(required=True, validate=validate.Regexp(VOLUME_NAME, error=VOLUME_NAME_ERROR),
                         metadata={"description": "unique in the project; the same request again returns the volume"})
    size_gib = fields.Integer(load_default=None, strict=True, validate=SIZE_GIB,
                              metadata={"description": "GiB, 1-2048; required for an empty volume"})
    snapshot = Id(load_default=None, metadata={"description": "a copy of this snapshot (on its host)"})
    image = Id(load_default=None, metadata={"description": "copy-on-write over this image"})
    instance = UuidString(load_default=None,
                          metadata={"description": "make it on this instance's host (to attach it there)"})
    project = Id(load_default=None, metadata={"description": "left out: your only project"})

    @validates_schema
    def one_source(self, data, **_kwargs):
        if data.get("snapshot") is not None and data.get("image") is not None:
            raise ValidationError("a snapshot or an image, not both", "image")
        if data.get("snapshot") is None and data.get("image") is None and data.get("size_gib") is None:
            raise ValidationError("required for an empty volume", "size_gib")
        if data.get("snapshot") is not None and data.get("instance") is not None:
            raise ValidationError("a volume from a snapshot is made on the snapshot's host", "instance")


class DataVolumeSchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    size_gib = fields.Integer()
    state = fields.String(metadata={"description": "creating, available, in-use, deleting, error"})
    host = fields.String(metadata={"description": "the host whose pool holds it: it attaches only to "
                                                 "instances there"})
    project = fields.Integer()
    user_id = fields.Integer()
    instance = fields.String(allow_none=True, metadata={"description": "while in-use: the instance"})
    device = fields.String(allow_none=True, metadata={"description": "while in-use: vdb, vdc, ..."})
    attach_state = fields.String(allow_none=True, metadata={"description": "attaching, attached, detaching"})
    attached_at = UtcDateTime(allow_none=True)
    snapshot = fields.Integer(allow_none=True, metadata={"description": "the snapshot it was made from"})
    image = fields.Integer(allow_none=True, metadata={"description": "the image it was made over"})
    reason = fields.String(allow_none=True, metadata={"description": "why the last operation failed"})
    created_at = UtcDateTime()
    updated_at = UtcDateTime(allow_none=True)


class ListVolumesRequest(StrictSchema):
    project = Id(load_default=None, allow_none=True, metadata={"description": "only this project's"})
    instance = UuidString(load_default=None, allow_none=True, metadata={"description": "only those attached to it"})


class AttachVolumeRequest(StrictSchema):
    instance = UuidString(required=True, metadata={"description": "a running or stopped instance of the "
                                                                  "volume's project on the volume's host"})


class CreateSnapshotRequest(StrictSchema):
    name = fields.String(required=True, validate=validate.Regexp(VOLUME_NAME, error=VOLUME_NAME_ERROR),
                         metadata={"description": "unique in the project"})


class SnapshotSchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    volume = fields.Integer(allow_none=True, metadata={"description": "the volume it copies (it may be gone)"})
    size_gib = fields.Integer()
    state = fields.String(metadata={"description": "creating, available, deleting, error"})
    host = fields.String()
    project = fields.Integer()
    user_id = fields.Integer()
    reason = fields.String(allow_none=True)
    created_at = UtcDateTime()


class ListSnapshotsRequest(StrictSchema):
    project = Id(load_default=None, allow_none=True, metadata={"description": "only this project's"})
    volume = Id(load_default=None, allow_none=True, metadata={"description": "only this volume's"})


class ReleaseInstanceVolumesRequest(StrictSchema):
    """An instance's domain is gone (its delete): its volumes become available."""
    instance_id = UuidString(required=True)


class AttachedVolumeSchema(StrictSchema):
    """What an instance shows of each of its volumes."""
    id = fields.Integer()
    name = fields.String()
    size_gib = fields.Integer()
    device = fields.String()
    attach_state = fields.String()


class StoragePoolSchema(StrictSchema):
    """A host's pool: libvirt's capacity, allocation (on disk) and available bytes, and what the
    data volumes there are promised (the sum of their sizes) and how many there are."""
    host = fields.String()
    pool = fields.String()
    kind = fields.String(metadata={"description": "the pool's kind: dir (qcow2 files) or logical (LVM)"})
    capacity_bytes = fields.Integer()
    allocation_bytes = fields.Integer()
    available_bytes = fields.Integer()
    promised_bytes = fields.Integer()
    volumes = fields.Integer()


class UserDeletedSchema(StrictSchema):
    """What this service reads of the accounts service's `user_deleted` event."""
    user_id = Id(required=True)
    username = fields.String(required=True)
    transfer_to = Id(load_default=None, allow_none=True)
