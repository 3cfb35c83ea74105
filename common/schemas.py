"""Marshmallow helpers: every RPC payload and REST body is loaded through `load`."""
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from common.errors import InvalidInput


class StrictSchema(Schema):
    """Unknown keys are an error: a typo in a field name must not be silently ignored."""

    class Meta:
        unknown = RAISE


ROLES = ("user", "admin")


class UuidString(fields.UUID):
    """A UUID in, its canonical lowercase string out: instance ids are libvirt domain UUIDs, and
    JSON and libvirt both want strings."""

    def _deserialize(self, value, attr, data, **kwargs):
        return str(super()._deserialize(value, attr, data, **kwargs))


class ActorSchema(StrictSchema):
    """Who is asking: what `accounts.authenticate` returns and every user-facing RPC takes first."""
    id = fields.Integer(required=True, strict=True)
    username = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


def load(schema, payload, partial=False):
    """Validate `payload` with `schema` (class or instance); raise InvalidInput naming the fields."""
    if isinstance(schema, type):
        schema = schema()
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise InvalidInput("the request body must be a JSON object", {"_schema": ["not an object"]})
    try:
        return schema.load(payload, partial=partial)
    except ValidationError as exc:
        fields = exc.normalized_messages()
        names = ", ".join(sorted(str(k) for k in fields))
        raise InvalidInput(f"invalid value for: {names}", fields) from None


def dump(schema, obj, many=False):
    if isinstance(schema, type):
        schema = schema()
    return schema.dump(obj, many=many)
