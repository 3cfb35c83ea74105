"""Payloads of the metrics service: the events it listens to, its RPC queries and answers."""
import datetime as dt
import uuid

from marshmallow import EXCLUDE, ValidationError, fields, validate

from common.schemas import StrictSchema

MIN_SECONDS = 60
MAX_SECONDS = 86400


class UnixTime(fields.Field):
    """A moment as unix seconds (float). Accepts a number or an ISO-8601 string (what marshmallow
    `DateTime` dumps, the host agent's format); a string without an offset is UTC."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("not a time")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                moment = dt.datetime.fromisoformat(value)
            except ValueError:
                raise ValidationError("not an ISO-8601 datetime") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.timezone.utc)
            return moment.timestamp()
        raise ValidationError("not a time")


class InstanceId(fields.String):
    """A UUID, returned in canonical form. It names a file, so nothing else gets through."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return str(uuid.UUID(text))
        except ValueError:
            raise ValidationError("not a UUID") from None


class EventSchema(StrictSchema):
    """Events come from other services, which may add fields before this one is upgraded:
    unknown keys are ignored here, unlike RPC payloads."""

    class Meta:
        unknown = EXCLUDE


def counter(**kwargs):
    # None: the hypervisor had no such counter for this domain (e.g. no network interface).
    return fields.Integer(required=True, allow_none=True, validate=validate.Range(min=0), **kwargs)


class DomainSampleSchema(EventSchema):
    """One domain in a `domain_stats` event; loaded one by one so a bad entry costs only itself."""
    instance_id = InstanceId(required=True)
    state = fields.String(load_default=None)
    # null when the hypervisor cannot tell (hostagent/schemas.py): cpu_percent is then unknown
    vcpus = fields.Integer(required=True, allow_none=True, validate=validate.Range(min=1))
    cpu_time_ns = counter()
    memory_kib = counter()
    disk_read_bytes = counter()
    disk_write_bytes = counter()
    net_rx_bytes = counter()
    net_tx_bytes = counter()


class DomainStatsSchema(EventSchema):
    """`hostagent.domain_stats`; `domains` are checked entry by entry with DomainSampleSchema."""
    host = fields.String(required=True)
    at = UnixTime(required=True)
    domains = fields.List(fields.Raw(), required=True)


class InstanceDeletedSchema(EventSchema):
    """The part of `instances.instance_deleted` (an InstanceSchema) this service needs."""
    id = InstanceId(required=True)


class MetricsQuery(StrictSchema):
    instance_id = InstanceId(required=True)
    seconds = fields.Integer(load_default=3600, validate=validate.Range(min=MIN_SECONDS, max=MAX_SECONDS))


class RrdUpdatesQuery(StrictSchema):
    start = fields.Integer(required=True, validate=validate.Range(min=0))
    instance_id = InstanceId(load_default=None, allow_none=True)


def point():
    return fields.Tuple((fields.Integer(), fields.Float(allow_none=True)))


class SeriesSchema(StrictSchema):
    cpu_percent = fields.List(point())
    memory_mib = fields.List(point())
    disk_read_bps = fields.List(point())
    disk_write_bps = fields.List(point())
    net_rx_bps = fields.List(point())
    net_tx_bps = fields.List(point())


class InstanceMetricsSchema(StrictSchema):
    instance_id = fields.String()
    step = fields.Integer()
    start = fields.Integer()
    end = fields.Integer()
    series = fields.Nested(SeriesSchema)
