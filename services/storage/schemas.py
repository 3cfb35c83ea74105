"""RPC payloads of the storage service."""
from marshmallow import ValidationError, fields, validate, validates_schema

from common.hostrpc import HOST_NAME_PATTERN
from common.schemas import StrictSchema, UtcDateTime, UuidString


class ImageSchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String()
    format = fields.String()
    size_bytes = fields.Integer()
    min_disk_gib = fields.Integer()
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


class CreateRootDiskRequest(StrictSchema):
    instance_id = UuidString(required=True)
    image_id = fields.Integer(required=True, validate=validate.Range(min=1))
    host = fields.String(required=True, validate=validate.Regexp(HOST_NAME_PATTERN))
    size_gib = fields.Integer(required=True, validate=validate.Range(min=1, max=2048))


class GrowRootDiskRequest(StrictSchema):
    """A resize: the instance's root disk grows to size_gib (never shrinks)."""
    instance_id = UuidString(required=True)
    size_gib = fields.Integer(required=True, validate=validate.Range(min=1, max=2048))


class DeleteRootDiskRequest(StrictSchema):
    instance_id = UuidString(required=True)


class DeleteOrphanVolumeRequest(StrictSchema):
    """A root disk found on a host that no live instance owns (reconcile)."""
    host = fields.String(required=True, validate=validate.Regexp(HOST_NAME_PATTERN))
    name = fields.String(required=True, validate=validate.Regexp(
        r"^root-[0-9a-f-]{36}\.qcow2$", error="only root disks (root-<instance id>.qcow2)"))


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
