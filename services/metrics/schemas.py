"""Payloads of the metrics service: the events it listens to, its RPC queries and answers. The
service also sends labcloud's mail: the accounts and instances events it turns into mail are
read here with their senders' schemas too."""
import datetime as dt
import uuid

from marshmallow import EXCLUDE, ValidationError, fields, post_load, validate, validates, validates_schema

from common.schemas import StrictSchema, UtcDateTime
from services.metrics import cron
from hostagent import schemas as hostagent_schemas
from services.accounts import schemas as accounts_schemas
from services.instances import schemas as instances_schemas

MIN_SECONDS = 60
MAX_SECONDS = 86400


def canonical_uuid(value):
    # An instance id names a file (rrd_store.py): nothing but a UUID gets through.
    try:
        return str(uuid.UUID(value))
    except (TypeError, ValueError, AttributeError):
        raise ValidationError("not a UUID") from None


class InstanceId(fields.String):
    """A UUID, returned in canonical form. It names a file, so nothing else gets through."""

    def _deserialize(self, value, attr, data, **kwargs):
        return canonical_uuid(super()._deserialize(value, attr, data, **kwargs))


# -- events -------------------------------------------------------------------------------
# Read with the senders' own schemas: a service's schemas module is its public contract
# (hostagent/schemas.py, services/instances/schemas.py); no field is declared again here but
# `domains`, taken raw. Unknown keys are excluded (unlike RPC payloads): a sender upgraded before
# this service may add fields. The subclasses add only what this service relies on to store.

class _RequiredFields:
    """Marks `required_fields` of the sender's schema required, in this schema's fields only:
    the sender declares what it dumps, this service needs them all present to store a sample."""
    required_fields = ()

    def on_bind_field(self, field_name, field_obj):
        super().on_bind_field(field_name, field_obj)
        if field_name in self.required_fields:
            field_obj.required = True


class RawList(fields.Field):
    """A JSON list taken as it is: `fields.List(fields.Raw())` ran a field's deserialisation per
    entry, every domain of every host every step, for nothing (the service loads each entry)."""
    default_error_messages = {"invalid": "Not a valid list."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise self.make_error("invalid")
        return value


class DomainStatsEvent(_RequiredFields, hostagent_schemas.DomainStatsSchema):
    """`hostagent.domain_stats`. `at` comes back as unix seconds. `domains` is taken raw and each
    entry loaded with DomainSampleEvent by the service, so a bad entry costs only itself."""
    required_fields = ("host", "at")
    domains = RawList(required=True)
    # Raw too, loaded with HostSampleEvent: a bad host sample costs only itself. Absent from
    # agents older than the per-device samples.
    host_sample = fields.Raw(load_default=None, allow_none=True)

    class Meta:
        unknown = EXCLUDE

    @post_load
    def _unix_at(self, data, **_):
        at = data["at"]
        if at.tzinfo is None:  # the agent sends naive UTC (common.clock.utcnow)
            at = at.replace(tzinfo=dt.timezone.utc)
        return {**data, "at": at.timestamp()}


COUNTERS = ("cpu_time_ns", "memory_kib", "disk_read_bytes", "disk_write_bytes", "net_rx_bytes",
            "net_tx_bytes")


class DomainSampleEvent(_RequiredFields, hostagent_schemas.DomainSampleSchema):
    """One domain of a `domain_stats` event. A counter (or vcpus) is null when the hypervisor
    cannot tell; cpu_percent is then unknown."""
    required_fields = ("instance_id", "vcpus") + COUNTERS

    class Meta:
        unknown = EXCLUDE

    @validates("instance_id")
    def _instance_id(self, value, **_):
        canonical_uuid(value)

    @validates("vcpus")
    def _vcpus(self, value, **_):
        if value is not None and value < 1:
            raise ValidationError("must be at least 1")

    @validates(*COUNTERS)
    def _counter(self, value, **_):
        if value is not None and value < 0:
            raise ValidationError("must not be negative")


class HostSampleEvent(hostagent_schemas.HostSampleSchema):
    """The `host_sample` of a `domain_stats` event."""

    class Meta:
        unknown = EXCLUDE


class InstanceDeletedEvent(_RequiredFields, instances_schemas.InstanceSchema):
    """`instances.instance_deleted` carries an InstanceSchema; only `id` matters here."""
    required_fields = ("id",)

    class Meta:
        unknown = EXCLUDE
        fields = ("id",)

    @validates("id")
    def _id(self, value, **_):
        canonical_uuid(value)


# -- events that become mail (accounts, instances) ----------------------------------------------
# The user nested in accounts' events is declared again only to exclude unknown keys in it too.

class UserEvent(_RequiredFields, accounts_schemas.UserSchema):
    required_fields = ("id", "username", "email")

    class Meta:
        unknown = EXCLUDE


class UserApprovedEvent(UserEvent):
    """`accounts.user_approved` carries the UserSchema itself."""


class UserReasonEvent(accounts_schemas.UserReasonEventSchema):
    """`accounts.user_rejected`."""
    user = fields.Nested(UserEvent, required=True)

    class Meta:
        unknown = EXCLUDE


class UserLinkEvent(accounts_schemas.UserLinkEventSchema):
    """`accounts.user_created`, `accounts.user_password_reset` (password_link null: no mail)."""
    user = fields.Nested(UserEvent, required=True)

    class Meta:
        unknown = EXCLUDE


class UserImportedEvent(accounts_schemas.UserImportedEventSchema):
    """`accounts.user_imported`, one per user created by an import."""
    user = fields.Nested(UserEvent, required=True)

    class Meta:
        unknown = EXCLUDE


class InstanceNoticeEvent(_RequiredFields, instances_schemas.InstanceSchema):
    """`instances.instance_ready` and `instances.instance_failed` carry an InstanceSchema; the
    owner (`user_id`) gets the mail."""
    required_fields = ("id", "user_id", "updated_at")

    class Meta:
        unknown = EXCLUDE
        fields = ("id", "name", "user_id", "state", "reason", "updated_at")


# -- RPC ----------------------------------------------------------------------------------

class MetricsQuery(StrictSchema):
    instance_id = InstanceId(required=True)
    seconds = fields.Integer(load_default=3600, validate=validate.Range(min=MIN_SECONDS, max=MAX_SECONDS))


class _XenServerUpdates(StrictSchema):
    """XenServer's /rrd_updates parameters: `start` (unix s), `interval` (seconds per row: picks
    the archive), `cf` (one consolidation function, else all), `host` (hosts too), `json` (JSON
    instead of XML); one VM is named by the subclass's field."""
    start = fields.Integer(required=True, validate=validate.Range(min=0))
    interval = fields.Integer(load_default=None, allow_none=True,
                              validate=validate.Range(min=1, max=86400))
    cf = fields.String(load_default=None, allow_none=True,
                       validate=validate.OneOf(("AVERAGE", "MIN", "MAX")))
    host = fields.Boolean(load_default=False)
    json = fields.Boolean(load_default=False)


class RrdUpdatesQuery(_XenServerUpdates):
    """`rrd_updates(...)` (internal, no actor): one VM is `instance_id`."""
    instance_id = InstanceId(load_default=None, allow_none=True)


class VmRrdQuery(StrictSchema):
    instance_id = InstanceId(required=True)


class VmRrdRequest(StrictSchema):
    """`get_vm_rrd(actor, request)`: XenServer's /vm_rrd query."""
    uuid = InstanceId(required=True)


class _GraphRequest(StrictSchema):
    """Metric and period are checked by graphs.py (a 400 naming `metric` or `period` lists what
    is allowed: it differs between instances and hosts)."""
    metric = fields.String(required=True, validate=validate.Length(max=32))
    period = fields.String(load_default="1h", validate=validate.Length(max=8))


class InstanceGraphRequest(_GraphRequest):
    """`get_instance_graph(actor, request)`."""
    instance_id = InstanceId(required=True)


class HostGraphRequest(_GraphRequest):
    """`get_host_graph(actor, request)`."""
    host = fields.String(required=True, validate=validate.Length(min=1, max=63))


class GraphSchema(StrictSchema):
    png_base64 = fields.String()


class GraphAvailabilityRequest(StrictSchema):
    """`get_graph_availability(actor, request)`: one instance or one host."""
    instance_id = InstanceId(load_default=None, allow_none=True)
    host = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=63))

    @validates_schema
    def one_of_them(self, data, **kwargs):
        if (data.get("instance_id") is None) == (data.get("host") is None):
            raise ValidationError("give either instance_id or host", "instance_id")


class GraphAvailabilitySchema(StrictSchema):
    """Whether the instance's or host's graphs have samples to draw (the portal shows "no data
    yet" instead of images without them)."""
    available = fields.Boolean()


class RrdUpdatesRequest(_XenServerUpdates):
    """`get_rrd_updates(actor, request)`: XenServer's /rrd_updates query as the gateway gets it
    (one VM is `vm_uuid`, XenServer's name)."""
    vm_uuid = InstanceId(load_default=None, allow_none=True)


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


# -- notification preferences (RPC) ---------------------------------------------------------

class NotificationPreferencesRequest(StrictSchema):
    """Kinds to turn on (true) or off (false); kinds left out keep their setting. `security` cannot
    be turned off (400 naming it)."""
    account = fields.Boolean(metadata={"description": "your sign-up approved or rejected"})
    security = fields.Boolean(metadata={"description": "one-time password links; always on"})
    instance = fields.Boolean(metadata={"description": "your instance is ready or in error"})
    alarm = fields.Boolean(metadata={"description": "one of your alarms changed state"})


class NotificationKindSchema(StrictSchema):
    kind = fields.String(metadata={"description": "account, security or instance"})
    enabled = fields.Boolean()
    can_disable = fields.Boolean(metadata={"description": "false for security notifications"})
    description = fields.String()


# -- alarms (RPC; alarm_rules.py, alarms.py) --------------------------------------------------

ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
ALARM_STATISTICS = ("average", "min", "max")
ALARM_COMPARISONS = ("GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold",
                     "LessThanOrEqualToThreshold")
ALARM_MISSING_DATA = ("missing", "ignore", "breaching", "notBreaching")
ALARM_INSTANCE_METRICS = ("cpu_percent", "memory_mib", "disk_read_bps", "disk_write_bps", "net_rx_bps",
                          "net_tx_bps")
ALARM_HOST_METRICS = ("loadavg", "memory_free_kib", "memory_total_kib")
ALARM_MAX_SPAN = 86400  # period x evaluation_periods: the rrd files keep 5 s rows for 10 min only


class AlarmActionSchema(StrictSchema):
    type = fields.String(required=True, validate=validate.OneOf(("resize", "stop")),
                         metadata={"description": "resize (to `flavor`) or stop the alarm's instance"})
    flavor = fields.Integer(strict=True, validate=validate.Range(min=1), load_default=None, allow_none=True,
                            metadata={"description": "resize: the new flavor's id"})
    confirm_restart = fields.Boolean(load_default=False, metadata={
        "description": "resize: a running instance may be restarted for it (instances' resize)"})
    on = fields.String(load_default="ALARM", validate=validate.OneOf(ALARM_STATES),
                       metadata={"description": "the state entered that runs the action (ALARM)"})

    @validates_schema
    def _flavor(self, data, **_):
        if data["type"] == "resize" and data.get("flavor") is None:
            raise ValidationError("a resize needs a flavor", "flavor")


def client_token():
    return fields.String(load_default=None, allow_none=True,
                         validate=validate.Regexp(r"^[\x21-\x7e]{1,64}$", error="1 to 64 printable ASCII characters"),
                         metadata={"description": "your idempotency key (EC2's ClientToken): a create "
                                                  "repeated with it returns what the first one made"})


class AlarmCreateRequest(StrictSchema):
    """Exactly one of `instance` (owner, course managers, admins) and `host` (admins)."""
    name = fields.String(load_default="", validate=validate.Length(max=64))
    client_token = client_token()
    instance = InstanceId(load_default=None, allow_none=True)
    host = fields.String(load_default=None, allow_none=True,
                         validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"))
    metric = fields.String(required=True, metadata={
        "description": "instance: " + ", ".join(ALARM_INSTANCE_METRICS) + "; host: " + ", ".join(ALARM_HOST_METRICS)})
    statistic = fields.String(load_default="average", validate=validate.OneOf(ALARM_STATISTICS))
    comparison = fields.String(required=True, validate=validate.OneOf(ALARM_COMPARISONS))
    threshold = fields.Float(required=True, allow_nan=False)
    period = fields.Integer(strict=True, load_default=60, validate=validate.Range(min=5, max=ALARM_MAX_SPAN),
                            metadata={"description": "seconds, a multiple of 5 (the samples' step)"})
    evaluation_periods = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=100))
    datapoints_to_alarm = fields.Integer(strict=True, load_default=None, allow_none=True,
                                         validate=validate.Range(min=1, max=100),
                                         metadata={"description": "at most evaluation_periods (its default)"})
    missing_data = fields.String(load_default="missing", validate=validate.OneOf(ALARM_MISSING_DATA))
    emails = fields.List(fields.Email(validate=validate.Length(max=254)), load_default=list,
                         validate=validate.Length(max=10),
                         metadata={"description": "addresses mailed besides the owner"})
    actions = fields.List(fields.Nested(AlarmActionSchema), load_default=list, validate=validate.Length(max=5))

    @validates_schema
    def _consistent(self, data, **_):
        if (data.get("instance") is None) == (data.get("host") is None):
            raise ValidationError("give exactly one of instance and host", "instance")
        metrics = ALARM_INSTANCE_METRICS if data.get("instance") else ALARM_HOST_METRICS
        if data.get("metric") not in metrics:
            raise ValidationError(f"one of {', '.join(metrics)}", "metric")
        if data["period"] % 5:
            raise ValidationError("a multiple of 5 seconds", "period")
        if data["period"] * data["evaluation_periods"] > ALARM_MAX_SPAN:
            raise ValidationError(f"period x evaluation_periods is at most {ALARM_MAX_SPAN} s",
                                  "evaluation_periods")
        if (data.get("datapoints_to_alarm") or 0) > data["evaluation_periods"]:
            raise ValidationError("at most evaluation_periods", "datapoints_to_alarm")
        if data.get("host") and data.get("actions"):
            raise ValidationError("instance actions need an instance alarm", "actions")


class AlarmSchema(StrictSchema):
    id = fields.Integer()
    user_id = fields.Integer()
    name = fields.String()
    instance = fields.String(attribute="instance_id", allow_none=True)
    host = fields.String(allow_none=True)
    metric = fields.String()
    statistic = fields.String()
    comparison = fields.String()
    threshold = fields.Float()
    period = fields.Integer()
    evaluation_periods = fields.Integer()
    datapoints_to_alarm = fields.Integer()
    missing_data = fields.String()
    emails = fields.List(fields.String())
    actions = fields.List(fields.Dict())
    state = fields.String(metadata={"description": "OK, ALARM or INSUFFICIENT_DATA"})
    state_reason = fields.String()
    state_value = fields.Float(allow_none=True)
    state_changed_at = UtcDateTime()
    evaluated_at = UtcDateTime(allow_none=True)
    created_at = UtcDateTime()


class AlarmHistorySchema(StrictSchema):
    id = fields.Integer()
    alarm_id = fields.Integer()
    old_state = fields.String()
    new_state = fields.String()
    reason = fields.String()
    value = fields.Float(allow_none=True)
    changed_at = UtcDateTime()
    actions_result = fields.String()


class AlarmQuery(StrictSchema):
    alarm_id = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=2 ** 31 - 1))


class AlarmListQuery(StrictSchema):
    instance_id = InstanceId(load_default=None, allow_none=True)
    host = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=63))


# -- scheduled actions (RPC; schedules.py, cron.py) --------------------------------------------

SCHEDULE_ACTIONS = ("resize", "stop", "start")


class ScheduleCreateRequest(StrictSchema):
    """An action on `instance` once `at` a time (with its zone, in the future) or on a `cron`
    schedule read in `timezone`: exactly one of `at` and `cron`."""
    instance = InstanceId(required=True)
    name = fields.String(load_default="", validate=validate.Length(max=64))
    action = fields.String(required=True, validate=validate.OneOf(SCHEDULE_ACTIONS))
    flavor = fields.Integer(strict=True, validate=validate.Range(min=1, max=2 ** 31 - 1), load_default=None,
                            allow_none=True, metadata={"description": "resize: the new flavor's id"})
    confirm_restart = fields.Boolean(load_default=False, metadata={
        "description": "resize: a running instance may be restarted for it (instances' resize)"})
    at = fields.AwareDateTime(load_default=None, allow_none=True, metadata={
        "description": "once, at this time (ISO 8601 with its zone offset, in the future)"})
    cron = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=120),
                         metadata={"description": "five cron fields: minute hour day month weekday"})
    timezone = fields.String(load_default="UTC", validate=validate.Length(min=1, max=64),
                             metadata={"description": "the zone `cron` is read in (IANA name)"})
    client_token = client_token()

    @post_load
    def _utc(self, data, **_):
        if data.get("at") is not None:  # the service keeps naive UTC
            data["at"] = data["at"].astimezone(dt.timezone.utc).replace(tzinfo=None)
        return data

    @validates_schema
    def _consistent(self, data, **_):
        if (data.get("at") is None) == (data.get("cron") is None):
            raise ValidationError("give exactly one of at and cron", "at")
        if data.get("cron") is not None and not cron.valid_expression(data["cron"]):
            raise ValidationError("five cron fields (minute hour day month weekday), e.g. 0 8 * * 1-5", "cron")
        if not cron.valid_zone(data.get("timezone", "UTC")):
            raise ValidationError("an IANA time zone, e.g. Europe/Paris", "timezone")
        if data["action"] == "resize" and data.get("flavor") is None:
            raise ValidationError("a resize needs a flavor", "flavor")
        if data["action"] != "resize" and data.get("flavor") is not None:
            raise ValidationError("only a resize takes a flavor", "flavor")


class ScheduleSchema(StrictSchema):
    id = fields.Integer()
    user_id = fields.Integer()
    name = fields.String()
    instance = fields.String(attribute="instance_id")
    action = fields.String(metadata={"description": "resize, stop or start"})
    flavor = fields.Integer(allow_none=True)
    confirm_restart = fields.Boolean()
    at = UtcDateTime(allow_none=True)
    cron = fields.String(allow_none=True)
    timezone = fields.String()
    state = fields.String(metadata={"description": "active, or done once a one-time schedule ran"})
    next_run_at = UtcDateTime(allow_none=True)
    last_run_at = UtcDateTime(allow_none=True)
    created_at = UtcDateTime()


class ScheduleRunSchema(StrictSchema):
    id = fields.Integer()
    schedule_id = fields.Integer()
    due_at = UtcDateTime()
    action = fields.String()
    outcome = fields.String(metadata={"description": "pending, ok or error"})
    result = fields.String(metadata={"description": "what the instances service answered, or the error"})
    started_at = UtcDateTime()
    finished_at = UtcDateTime(allow_none=True)


class ScheduleQuery(StrictSchema):
    schedule_id = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=2 ** 31 - 1))


class ScheduleListQuery(StrictSchema):
    instance_id = InstanceId(load_default=None, allow_none=True)
