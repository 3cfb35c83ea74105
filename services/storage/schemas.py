"""RPC payloads of the storage service."""
from marshmallow import fields, validate

from common.hostrpc import HOST_NAME_PATTERN
from common.schemas import StrictSchema, UuidString


class ImageSchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String()
    format = fields.String()
    size_bytes = fields.Integer()
    min_disk_gib = fields.Integer()
    created_at = fields.DateTime()


class CreateRootDiskRequest(StrictSchema):
    instance_id = UuidString(required=True)
    image_id = fields.Integer(required=True, validate=validate.Range(min=1))
    host = fields.String(required=True, validate=validate.Regexp(HOST_NAME_PATTERN))
    size_gib = fields.Integer(required=True, validate=validate.Range(min=1, max=2048))


class DeleteRootDiskRequest(StrictSchema):
    instance_id = UuidString(required=True)


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
    created_at = fields.DateTime()
