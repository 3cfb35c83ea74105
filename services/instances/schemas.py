"""RPC payloads of the instances service."""
import json

from marshmallow import ValidationError, fields, validate, validates_schema

from common.schemas import Id, StrictSchema, UtcDateTime, UuidString

INSTANCE_NAME = validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,62}$",
                                error="lower-case letters, digits and '-', at most 63, like a hostname")
USER_DATA_MAX_BYTES = 16 * 1024
HOST_NAME_REGEX = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,47}"   # a hypervisor host's name (the gateway's URLs too)


IMAGE_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"


class ImageReference(fields.Field):
    """An image id (a positive integer) or an image name (the storage service resolves it)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int) and not isinstance(value, bool):
            return Id().deserialize(value)
        if isinstance(value, str):
            return validate.Regexp(IMAGE_NAME, error="an image id or name")(value)
        raise ValidationError("an image id or name")

    @staticmethod
    def from_form(text):
        """A form's text: digits are an id (as the CLI reads them), anything else a name."""
        return int(text) if text.isdigit() else text


class CreateInstanceRequest(StrictSchema):
    name = fields.String(required=True, validate=INSTANCE_NAME)
    flavor = Id(required=True, metadata={"description": "flavor id"})
    image = ImageReference(required=True, metadata={
        "description": "image id, or name: its newest active version (yours, else your course's, else public)",
        "oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": IMAGE_NAME}]})
    key = Id(required=True, metadata={"description": "SSH key id"})
    user_data = fields.String(load_default=None, validate=validate.Length(max=USER_DATA_MAX_BYTES),
                              metadata={"description": "script or cloud-config, at most 16 KiB"})
    project = Id(load_default=None, metadata={"description": "project (course) id; may be left out by "
                                                             "a member of exactly one project"})
    group = fields.String(load_default=None, validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"),
                          metadata={"description": "a placement group of one's own instances (a name)"})
    anti_affinity = fields.Boolean(load_default=False, metadata={
        "description": "place it on a host that holds no other instance of its group (needs group)"})
    security_groups = fields.List(
        fields.String(validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")), load_default=None,
        validate=validate.Length(min=1, max=8),
        metadata={"description": "security groups of its course (names); default: the course's `default`"})

    @validates_schema
    def _group_for_anti_affinity(self, data, **_):
        if data.get("anti_affinity") and not data.get("group"):
            raise ValidationError("anti_affinity needs a group", "anti_affinity")


class SaveImageRequest(StrictSchema):
    """POST /instances/{id}/save-image: the stopped instance's disk as a new image."""
    name = fields.String(required=True, validate=validate.Regexp(IMAGE_NAME, error="lower-case letters, digits "
                                                                                   "and '-', at most 63"),
                         metadata={"description": "an existing name of the same scope gets its next version"})
    visibility = fields.String(load_default="project", validate=validate.OneOf(["project", "private", "public"]),
                               metadata={"description": "project (default): the instance's course (its "
                                                        "managers); private: yours; public: admins"})
    description = fields.String(load_default="", validate=validate.Length(max=255))


class SetResourcesRequest(StrictSchema):
    """PATCH an instance: any of its resource shares (services/instances/shares.py), applied live."""
    cpu_weight = fields.Integer(validate=validate.Range(min=1, max=65536), metadata={
        "description": "relative CPU weight (XenServer's): 512 gets twice the CPU of 256 on a busy host"})
    cpu_cap = fields.Integer(validate=validate.Range(min=0, max=6400), metadata={
        "description": "most CPU the whole guest may use, percent of one vCPU; 0 = no cap; "
                       "at most 100 x the flavor's vCPUs"})
    memory_mib = fields.Integer(validate=validate.Range(min=64, max=262144), metadata={
        "description": "the guest's memory, changed live through its balloon; at most the flavor's "
                       "max_memory_mib; growth is charged to the project's quota"})
    bandwidth_in_kib = fields.Integer(validate=validate.Range(min=0, max=10 * 1024 * 1024), metadata={
        "description": "KiB/s into the guest; 0 = no limit"})
    bandwidth_out_kib = fields.Integer(validate=validate.Range(min=0, max=10 * 1024 * 1024), metadata={
        "description": "KiB/s out of the guest; 0 = no limit"})

    @validates_schema
    def _something(self, data, **_):
        if not data:
            raise ValidationError("give at least one of cpu_weight, cpu_cap, memory_mib, "
                                  "bandwidth_in_kib, bandwidth_out_kib", "_schema")


class ResizeRequest(StrictSchema):
    flavor = Id(required=True, metadata={"description": "the new flavor's id"})
    confirm_restart = fields.Boolean(load_default=False, metadata={
        "description": "a running instance whose vCPUs or disk change, or whose new maximum memory is "
                       "above what it was started with, is stopped and started again only when this is true"})


class MigrateRequest(StrictSchema):
    host = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(f"^{HOST_NAME_REGEX}$"),
                         metadata={"description": "the destination; left out, the scheduler picks one of the "
                                                  "other hosts"})


class MigrateRequestedSchema(StrictSchema):
    """Event `instance_migrate_requested`: a migration to carry out (migrate.run_migration)."""
    instance_id = UuidString(required=True)
    live = fields.Boolean(load_default=True)   # it was running (else stopped: it arrives stopped)


class ListInstancesRequest(StrictSchema):
    include_deleted = fields.Boolean(load_default=False)
    project = Id(load_default=None, allow_none=True,
                 metadata={"description": "only this project's instances (a member of it sees their own)"})


class FlavorSchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    vcpus = fields.Integer()
    memory_mib = fields.Integer()
    disk_gib = fields.Integer()
    max_memory_mib = fields.Integer(metadata={"description": "what an instance's memory may be set to"})
    cpu_weight = fields.Integer(metadata={"description": "default CPU weight of its instances"})
    cpu_cap_percent = fields.Integer(metadata={"description": "default CPU cap of its instances, percent "
                                                              "of one vCPU (0 = none)"})


class InstanceSchema(StrictSchema):
    id = fields.String()
    name = fields.String()
    user_id = fields.Integer()
    project = fields.Integer(attribute="project_id")
    state = fields.String(metadata={"description": "the instance's state; the states and their transitions "
                                                   "are listed in docs/architecture.md (services/instances/states.py)"})
    reason = fields.String(allow_none=True)
    host = fields.String(allow_none=True)
    migrating_to = fields.String(allow_none=True, metadata={"description": "while it migrates: the destination"})
    ip = fields.String(allow_none=True)
    mac = fields.String(allow_none=True)
    flavor = fields.Integer(attribute="flavor_id")
    image = fields.Integer(attribute="image_id")
    key = fields.Integer(attribute="key_id", allow_none=True)
    group = fields.String(attribute="placement_group", allow_none=True)
    anti_affinity = fields.Boolean()
    cpu_weight = fields.Integer(metadata={"description": "relative CPU weight, 1-65536"})
    cpu_cap = fields.Integer(metadata={"description": "CPU cap, percent of one vCPU; 0 = none"})
    memory_mib = fields.Integer(metadata={"description": "the guest's memory now"})
    bandwidth_in_kib = fields.Integer(metadata={"description": "KiB/s into the guest; 0 = no limit"})
    bandwidth_out_kib = fields.Integer(metadata={"description": "KiB/s out of the guest; 0 = no limit"})
    created_at = UtcDateTime()
    updated_at = UtcDateTime()
    running_at = UtcDateTime(allow_none=True)
    deleted_at = UtcDateTime(allow_none=True)
    ssh = fields.Method("ssh_endpoint", metadata={"description": "{host, port} to reach the guest's SSH"})
    ready = fields.Method("is_ready", metadata={"description": "SSH answered since the guest last started"})
    ssh_ready_seconds = fields.Method("ready_seconds", allow_none=True,
                                      metadata={"description": "guest start to SSH answering"})

    def ssh_endpoint(self, instance):
        port = getattr(instance, "ssh_port", None)
        return {"host": "127.0.0.1", "port": port} if port else None

    def is_ready(self, instance):
        return getattr(instance, "ssh_ready_at", None) is not None

    def ready_seconds(self, instance):
        ready, started = getattr(instance, "ssh_ready_at", None), getattr(instance, "started_at", None)
        return round((ready - started).total_seconds(), 2) if ready and started else None


class QuotaUsageSchema(StrictSchema):
    instances = fields.Integer()
    vcpus = fields.Integer()
    memory_mib = fields.Integer()


class ProjectUsageSchema(StrictSchema):
    """What a project's instances take of its quota, in all and per owner (keys: user ids)."""
    project = fields.Nested(QuotaUsageSchema)
    users = fields.Dict(keys=fields.String(), values=fields.Nested(QuotaUsageSchema))


class ProjectIdSchema(StrictSchema):
    project_id = Id(required=True)


class UserDeletedSchema(StrictSchema):
    """What this service reads of the accounts service's `user_deleted` event."""
    user_id = Id(required=True)
    username = fields.String(required=True)
    transfer_to = Id(load_default=None, allow_none=True)


class InstanceIdSchema(StrictSchema):
    instance_id = UuidString(required=True)


class PowerActionSchema(StrictSchema):
    instance_id = UuidString(required=True)
    action = fields.String(required=True, validate=validate.OneOf(["stop", "start", "reboot"]))


class ResizeRequestedSchema(StrictSchema):
    """Event `instance_resize_requested`: a resize that restarts the guest (resize.run_restart)."""
    instance_id = UuidString(required=True)


class GuestMetadataSchema(StrictSchema):
    """What the host agent's metadata server serves to one guest."""
    instance_id = fields.String()
    hostname = fields.String()
    local_ipv4 = fields.String()
    mac = fields.String()
    public_keys = fields.List(fields.String())
    instance_type = fields.String()
    availability_zone = fields.String()
    user_data = fields.String(allow_none=True)


class HostSchema(StrictSchema):
    name = fields.String()
    hypervisor = fields.String()
    state = fields.String(metadata={"description": "enabled, disabled or draining: only enabled hosts take "
                                                   "new instances"})
    up = fields.Boolean(metadata={"description": "its agent's heartbeats are fresh"})
    status = fields.Method("host_status", metadata={"description": "down when not up, else its state"})
    last_heartbeat = UtcDateTime(allow_none=True)
    vcpus = fields.Integer()
    memory_mib = fields.Integer()
    disk_gib = fields.Integer(allow_none=True, metadata={"description": "its storage pool; null until reported"})
    allocated_vcpus = fields.Integer()
    allocated_memory_mib = fields.Integer()
    allocated_disk_gib = fields.Integer()
    capacity_vcpus = fields.Float(metadata={"description": "vcpus x the CPU allocation ratio"})
    capacity_memory_mib = fields.Float(metadata={"description": "memory_mib x the memory allocation ratio"})
    capacity_disk_gib = fields.Float(allow_none=True, metadata={"description": "disk_gib x the disk allocation ratio"})
    instances = fields.Integer(metadata={"description": "instances holding resources on it"})
    memory_free_mib = fields.Integer(allow_none=True, metadata={"description": "free memory, as the host says"})
    load_1m = fields.Float(allow_none=True, metadata={"description": "the host's 1-minute load average"})
    used_memory_mib = fields.Integer(metadata={"description": "same as allocated_memory_mib (older name)"})
    used_vcpus = fields.Integer(metadata={"description": "same as allocated_vcpus (older name)"})

    def host_status(self, host):
        return host["state"] if host.get("up") else "down"


class HostInstanceSchema(StrictSchema):
    id = fields.String()
    name = fields.String()
    state = fields.String()
    user_id = fields.Integer()
    project = fields.Integer(attribute="project_id")
    vcpus = fields.Integer()
    memory_mib = fields.Integer()


class HostDetailSchema(HostSchema):
    instances_on_host = fields.List(fields.Nested(HostInstanceSchema), metadata={
        "description": "the live instances placed on it"})


class HostDrainSchema(HostSchema):
    migrations_started = fields.List(fields.String(), metadata={
        "description": "the running instances asked to migrate away now"})
    refused = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "instance id: why it could not be asked to migrate (it stays; drain again later)"})


class HostNameSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Regexp(f"^{HOST_NAME_REGEX}$"))


class InstanceActionSchema(StrictSchema):
    """One entry of an instance's action log (Nova's instance actions)."""
    id = fields.Integer()
    instance_id = fields.String()
    action = fields.String(metadata={"description": "create, stop, start, reboot, resize, migrate, delete, reconcile or transfer"})
    user_id = fields.Integer(allow_none=True, metadata={"description": "who asked; null: labcloud itself"})
    username = fields.String(allow_none=True)
    requested_at = UtcDateTime()
    finished_at = UtcDateTime(allow_none=True)
    result = fields.String(metadata={"description": "in_progress, success or error"})
    message = fields.String(allow_none=True)


class ReconcileFindingSchema(StrictSchema):
    host = fields.String()
    kind = fields.String(metadata={"description": "instance, domain, volume, leftovers, address, host"})
    subject = fields.String()
    action = fields.String(metadata={"description": "state_corrected, lost_domain, host_down, stuck, "
                                                    "delete_retried, orphan_seen, orphan_waiting, "
                                                    "orphan_removed, orphan_remove_failed, allocation_corrected, skipped, failed"})
    detail = fields.String()


class ReconcileReportSchema(StrictSchema):
    id = fields.Integer()
    started_at = UtcDateTime()
    finished_at = UtcDateTime(allow_none=True)
    replica = fields.String()
    trigger = fields.String(metadata={"description": "timer, admin or host_returned"})
    hosts = fields.Method("host_list", metadata={"description": "hosts whose inventory was read"})
    findings = fields.Method("finding_list")

    def host_list(self, report):
        return [h for h in (report.hosts or "").split(",") if h]

    def finding_list(self, report):
        return ReconcileFindingSchema(many=True).dump(json.loads(report.findings or "[]"))
