"""Answers the gateway puts together from two services' answers (for the OpenAPI document); each
part is its service's own public schema. Referenced by name from the routes, so it is imported
only when the app is made."""
from marshmallow import fields

from services.instances.schemas import InstanceSchema
from services.storage.schemas import AttachedVolumeSchema


class InstanceWithVolumesSchema(InstanceSchema):
    """GET /api/v1/instances/{id}: the instance and the data volumes attached to it (storage's)."""
    volumes = fields.List(fields.Nested(AttachedVolumeSchema),
                          metadata={"description": "data volumes attached (or attaching, detaching), by device"})
