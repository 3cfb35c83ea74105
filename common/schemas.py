"""Marshmallow helpers: every RPC payload and REST body is loaded through `load`."""
import datetime as dt

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from common.errors import InvalidInput


class StrictSchema(Schema):
    """Unknown keys are an error: a typo in a field name must not be silently ignored."""

    class Meta:
        unknown = RAISE


ROLES = ("user", "admin")
PROJECT_ROLES = ("manager", "member")
# Ids are 64-bit signed integers in every database labcloud runs on; a larger number can name
# nothing, so it is refused as input (400) instead of overflowing the database driver (500).
MAX_ID = 2 ** 63 - 1


def Id(**kwargs):
    """An integer id field: strict (no "12" strings, no booleans), 1..MAX_ID."""
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID), **kwargs)


class UtcDateTime(fields.DateTime):
    """RFC 3339 with an explicit offset (`2026-12-01T11:52:45.980155+00:00`).

    The services keep naive UTC datetimes (common.clock.utcnow); out they go with +00:00, and an
    incoming value with an offset comes back as naive UTC (one without is taken as UTC)."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return super()._serialize(value, attr, obj, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value


class UuidString(fields.UUID):
    """A UUID in, its canonical lowercase string out: instance ids are libvirt domain UUIDs, and
    JSON and libvirt both want strings."""

    def _deserialize(self, value, attr, data, **kwargs):
        return str(super()._deserialize(value, attr, data, **kwargs))


class ProjectRoleSchema(StrictSchema):
    """One project the actor belongs to, and as what (Keystone's role assignment)."""
    id = Id(required=True)
    role = fields.String(required=True, validate=validate.OneOf(PROJECT_ROLES))


class ActorSchema(StrictSchema):
    """Who is asking: what `accounts.authenticate` returns and every user-facing RPC takes first.
    `role` is the global role; `projects` the per-project roles, read by common/policy.py."""
    id = fields.Integer(required=True, strict=True)
    username = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    projects = fields.List(fields.Nested(ProjectRoleSchema), load_default=list)


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
