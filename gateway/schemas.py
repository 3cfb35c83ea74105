"""The gateway's own response shapes, for the OpenAPI document only (services own the rest)."""
from marshmallow import Schema, fields


class ErrorDetailSchema(Schema):
    code = fields.String(required=True, metadata={"example": "invalid_input"})
    message = fields.String(required=True)
    # Schema.fields is marshmallow's own attribute, hence the data_key.
    field_errors = fields.Dict(data_key="fields", keys=fields.String(), values=fields.Raw(),
                               required=True,
                               metadata={"description": "per-field messages, for invalid_input"})


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetailSchema, required=True)


class DeletedSchema(Schema):
    deleted = fields.Boolean(required=True, metadata={"description": "false if it was already gone"})


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


class ConsoleSchema(Schema):
    output = fields.String(metadata={"description": "the last 64 KiB of the serial console"})


class ChangedSchema(Schema):
    changed = fields.Boolean(required=True)


class RevokedSchema(Schema):
    revoked = fields.Boolean(required=True, metadata={"description": "false if it was already gone"})
