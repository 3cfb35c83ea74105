"""RPC payloads of the instances service."""
from marshmallow import fields, validate

from common.schemas import StrictSchema, UuidString

INSTANCE_NAME = validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,62}$",
                                error="lower-case letters, digits and '-', at most 63, like a hostname")
USER_DATA_MAX_BYTES = 16 * 1024


class CreateInstanceRequest(StrictSchema):
    name = fields.String(required=True, validate=INSTANCE_NAME)
    flavor = fields.Integer(required=True, strict=True, metadata={"description": "flavor id"})
    image = fields.Integer(required=True, strict=True, metadata={"description": "image id"})
    key = fields.Integer(required=True, strict=True, metadata={"description": "SSH key id"})
    user_data = fields.String(load_default=None, validate=validate.Length(max=USER_DATA_MAX_BYTES),
                              metadata={"description": "script or cloud-config, at most 16 KiB"})


class FlavorSchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    vcpus = fields.Integer()
    memory_mib = fields.Integer()
    disk_gib = fields.Integer()
    cpu_weight = fields.Integer()
    cpu_cap_percent = fields.Integer()


class InstanceSchema(StrictSchema):
    id = fields.String()
    name = fields.String()
    user_id = fields.Integer()
    state = fields.String(metadata={"description": "pending, building, running, stopping, stopped, "
                                                   "starting, rebooting, error, deleting, deleted"})
    reason = fields.String(allow_none=True)
    host = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
    mac = fields.String(allow_none=True)
    flavor = fields.Integer(attribute="flavor_id")
    image = fields.Integer(attribute="image_id")
    key = fields.Integer(attribute="key_id", allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    running_at = fields.DateTime(allow_none=True)
    deleted_at = fields.DateTime(allow_none=True)
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


class InstanceIdSchema(StrictSchema):
    instance_id = UuidString(required=True)


class PowerActionSchema(StrictSchema):
    instance_id = UuidString(required=True)
    action = fields.String(required=True, validate=validate.OneOf(["stop", "start", "reboot"]))


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
    vcpus = fields.Integer()
    memory_mib = fields.Integer()
    state = fields.String()
    last_heartbeat = fields.DateTime(allow_none=True)
    used_memory_mib = fields.Integer()
    used_vcpus = fields.Integer()


