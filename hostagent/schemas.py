"""RPC and event payloads of the host agent (see docs/architecture.md, "host agent")."""
import ipaddress

from marshmallow import ValidationError, fields, validate, validates, validates_schema

from common.schemas import StrictSchema, UtcDateTime, UuidString

MAC_PATTERN = r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$"
DOMAIN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
VOLUME_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
DISK_FORMATS = ("qcow2", "raw")
# A routed subnet's libvirt network: `lcr-` + the subnet's name (routed.py).
ROUTED_NETWORK_PATTERN = r"^lcr-[a-z0-9][a-z0-9-]{0,63}$"
HOSTNAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
MAX_STOP_TIMEOUT_S = 600
MAX_CONSOLE_BYTES = 1 << 20
MEMORY_RANGE = validate.Range(min=32, max=262144)
CPU_WEIGHT_RANGE = validate.Range(min=1, max=65536)       # XenServer's weight
CPU_CAP_RANGE = validate.Range(min=0, max=6400)           # percent of one vCPU, <= 100 x vcpus
BANDWIDTH_RANGE = validate.Range(min=0, max=10 * 1024 * 1024)  # KiB/s, 0 = no limit
DOMAIN_STATES = ("nostate", "running", "blocked", "paused", "shutdown", "shutoff", "crashed",
                 "pmsuspended", "unknown")


def _check_ip(value):
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise ValidationError("not an IPv4 address") from None


class HostInfoSchema(StrictSchema):
    host = fields.String()
    hypervisor = fields.String()
    uri = fields.String()
    vcpus = fields.Integer()
    memory_mib = fields.Integer()
    pool = fields.String()
    pool_path = fields.String()
    pool_kind = fields.String()  # dir | logical (hostagent/pools)
    disk_format = fields.String()  # the format of its pool's guest volumes: qcow2 (dir) | raw (logical)


class EnsureImageRequest(StrictSchema):
    image_id = fields.Integer(required=True, validate=validate.Range(min=1))
    source_path = fields.String(load_default=None)
    format = fields.String(load_default="qcow2", validate=validate.OneOf(DISK_FORMATS))
    capacity_bytes = fields.Integer(required=True, validate=validate.Range(min=1))


class ExportVolumeRequest(StrictSchema):
    """Save an instance as an image: the pool volume `name` flattened into `destination`, a file
    of the storage service's image store (an absolute path, a `.part` file it then checks)."""
    name = fields.String(required=True, validate=validate.Regexp(VOLUME_NAME_PATTERN))
    destination = fields.String(required=True, validate=validate.Regexp(
        r"^/[^\0]*\.qcow2\.part$", error="an absolute path of a .qcow2.part file"))


class ExportedVolumeSchema(StrictSchema):
    path = fields.String()
    bytes = fields.Integer()


class CreateVolumeRequest(StrictSchema):
    name = fields.String(required=True, validate=validate.Regexp(VOLUME_NAME_PATTERN))
    capacity_bytes = fields.Integer(required=True, validate=validate.Range(min=1))
    format = fields.String(load_default="qcow2", validate=validate.OneOf(DISK_FORMATS))
    backing_path = fields.String(load_default=None)
    # The backing file's format when the caller knows it (storage does): saves looking it up.
    backing_format = fields.String(load_default=None, validate=validate.OneOf(DISK_FORMATS))


class GrowVolumeRequest(StrictSchema):
    name = fields.String(required=True, validate=validate.Regexp(VOLUME_NAME_PATTERN))
    capacity_bytes = fields.Integer(required=True, validate=validate.Range(min=1))


class DeleteVolumeRequest(StrictSchema):
    name = fields.String(required=True, validate=validate.Regexp(VOLUME_NAME_PATTERN))


class CloneVolumeRequest(StrictSchema):
    """A full copy `name` of the pool's volume `source` (a snapshot, or a volume from one)."""
    name = fields.String(required=True, validate=validate.Regexp(VOLUME_NAME_PATTERN))
    source = fields.String(required=True, validate=validate.Regexp(VOLUME_NAME_PATTERN))
    capacity_bytes = fields.Integer(load_default=None, validate=validate.Range(min=1))


DISK_DEVICE_PATTERN = r"^vd[b-z]$"


class AttachDiskRequest(StrictSchema):
    """A data volume as a virtio disk of the instance's domain (hot-plugged when it runs)."""
    instance_id = UuidString(required=True)
    path = fields.String(required=True, validate=validate.Length(min=1, max=1024))
    device = fields.String(required=True, validate=validate.Regexp(DISK_DEVICE_PATTERN))
    format = fields.String(load_default="qcow2", validate=validate.OneOf(DISK_FORMATS))
    serial = fields.String(load_default=None, validate=validate.Length(max=64))


class DetachDiskRequest(StrictSchema):
    instance_id = UuidString(required=True)
    device = fields.String(required=True, validate=validate.Regexp(DISK_DEVICE_PATTERN))
    path = fields.String(load_default=None, validate=validate.Length(min=1, max=1024))


class DiskAttachmentSchema(StrictSchema):
    """attach_disk: `live` when the running guest has the disk now (else at its next start).
    detach_disk: `detached` false when the domain did not have it (asked again, or gone)."""
    device = fields.String()
    live = fields.Boolean()
    detached = fields.Boolean()


class DomainDisksRequest(StrictSchema):
    instance_id = UuidString(required=True)


class DomainDisksSchema(StrictSchema):
    instance_id = fields.String()
    disks = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True))


class PoolUsageSchema(StrictSchema):
    """The host's storage pool as libvirt reports it: its size, what its volumes take on disk, and
    what is free."""
    host = fields.String()
    pool = fields.String()
    kind = fields.String()  # dir | logical (hostagent/pools)
    capacity_bytes = fields.Integer()
    allocation_bytes = fields.Integer()
    available_bytes = fields.Integer()


class VolumeInfoSchema(StrictSchema):
    name = fields.String()
    path = fields.String()
    capacity_bytes = fields.Integer()
    format = fields.String()


class RoutedNetworkSpec(StrictSchema):
    """A routed subnet of this host (routed.py): the network service's AddressSchema names it
    (`network`, `cidr`, `gateway`, `dns_servers`)."""
    name = fields.String(required=True, validate=validate.Regexp(ROUTED_NETWORK_PATTERN))
    cidr = fields.String(required=True)
    gateway = fields.String(required=True)
    dns_servers = fields.List(fields.String(), load_default=list, validate=validate.Length(max=4))

    @validates("cidr")
    def _cidr(self, value, **_):
        try:
            ipaddress.IPv4Network(value, strict=True)
        except ValueError:
            raise ValidationError("not an IPv4 network") from None

    @validates("gateway")
    def _gateway(self, value, **_):
        _check_ip(value)

    @validates("dns_servers")
    def _dns(self, values, **_):
        for value in values:
            _check_ip(value)

    @validates_schema(skip_on_field_errors=True)
    def _gateway_inside(self, data, **_):
        if ipaddress.IPv4Address(data["gateway"]) not in ipaddress.IPv4Network(data["cidr"]):
            raise ValidationError(f"not in {data['cidr']}", "gateway")


class RoutedNetworkNameRequest(StrictSchema):
    name = fields.String(required=True, validate=validate.Regexp(ROUTED_NETWORK_PATTERN))


class RoutedNetworkSchema(StrictSchema):
    name = fields.String()
    bridge = fields.String(allow_none=True)
    forward_mode = fields.String()
    active = fields.Boolean()
    created = fields.Boolean(metadata={"description": "this call defined it (false: it existed)"})


class DomainSpec(StrictSchema):
    instance_id = UuidString(required=True)
    name = fields.String(required=True, validate=validate.Regexp(DOMAIN_NAME_PATTERN))
    vcpus = fields.Integer(required=True, validate=validate.Range(min=1, max=64))
    # Resource shares: services/instances/shares.py says what they mean, hostagent/shares.py how
    # they are applied. memory_mib is the guest's memory now, max_memory_mib what it was defined with.
    memory_mib = fields.Integer(required=True, validate=MEMORY_RANGE)
    max_memory_mib = fields.Integer(load_default=None, validate=MEMORY_RANGE)
    cpu_weight = fields.Integer(required=True, validate=CPU_WEIGHT_RANGE)
    cpu_cap = fields.Integer(required=True, validate=CPU_CAP_RANGE)
    bandwidth_in_kib = fields.Integer(load_default=0, validate=BANDWIDTH_RANGE)
    bandwidth_out_kib = fields.Integer(load_default=0, validate=BANDWIDTH_RANGE)
    disk_path = fields.String(required=True, validate=validate.Length(min=1, max=4096))
    mac = fields.String(required=True, validate=validate.Regexp(MAC_PATTERN, error="not a lowercase MAC"))
    ip = fields.String(required=True)
    # Direct kernel boot (real hosts): paths on the host; the cmdline comes complete from the
    # instances service (ip=..., console=ttyS0). Without a kernel the disk boots.
    kernel = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=4096))
    initrd = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=4096))
    cmdline = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2048))
    hostname = fields.String(load_default=None, allow_none=True,
                             validate=validate.Regexp(HOSTNAME_PATTERN, error="not a hostname label"))
    # The guest's address is on a routed subnet of this host: its interface joins that network
    # (made first if needed); null: the host's own network (HOST_NETWORK).
    network = fields.Nested(RoutedNetworkSpec, load_default=None, allow_none=True)

    @validates_schema
    def _shares_fit(self, data, **_):
        check_shares_fit(data)

    @validates("kernel", "initrd")
    def _boot_path(self, value, **_):
        if value is not None and not value.startswith("/"):
            raise ValidationError("must be an absolute path")

    @validates("ip")
    def _ip(self, value, **_):
        _check_ip(value)

    @validates("disk_path")
    def _disk_path(self, value, **_):
        if not value.startswith("/"):
            raise ValidationError("must be an absolute path")


def check_shares_fit(data):
    """The limits that depend on the domain's size: the cap on its vCPUs, the memory its maximum."""
    errors = {}
    if data.get("vcpus") and data.get("cpu_cap", 0) > 100 * data["vcpus"]:
        errors["cpu_cap"] = [f"at most {100 * data['vcpus']} (100 x {data['vcpus']} vCPUs)"]
    if data.get("max_memory_mib") and data.get("memory_mib", 0) > data["max_memory_mib"]:
        errors["memory_mib"] = [f"at most max_memory_mib ({data['max_memory_mib']})"]
    if errors:
        raise ValidationError(errors)


class DomainSharesRequest(StrictSchema):
    """set_domain_shares: the instance's shares, absolute (a repeat changes nothing)."""
    instance_id = UuidString(required=True)
    vcpus = fields.Integer(required=True, validate=validate.Range(min=1, max=64))
    max_memory_mib = fields.Integer(required=True, validate=MEMORY_RANGE)
    memory_mib = fields.Integer(required=True, validate=MEMORY_RANGE)
    cpu_weight = fields.Integer(required=True, validate=CPU_WEIGHT_RANGE)
    cpu_cap = fields.Integer(required=True, validate=CPU_CAP_RANGE)
    bandwidth_in_kib = fields.Integer(required=True, validate=BANDWIDTH_RANGE)
    bandwidth_out_kib = fields.Integer(required=True, validate=BANDWIDTH_RANGE)

    @validates_schema
    def _shares_fit(self, data, **_):
        check_shares_fit(data)


class DomainSharesSchema(StrictSchema):
    """What the domain has: its live values when it runs, else its definition's. cpu_weight and
    cpu_cap are null where the hypervisor has no CPU scheduler (test:///default)."""
    instance_id = fields.String()
    active = fields.Boolean()
    cpu_weight = fields.Integer(allow_none=True)
    cpu_cap = fields.Integer(allow_none=True)
    memory_mib = fields.Integer()
    max_memory_mib = fields.Integer()
    bandwidth_in_kib = fields.Integer()
    bandwidth_out_kib = fields.Integer()


class DestroyDomainRequest(StrictSchema):
    instance_id = UuidString(required=True)
    # After the guest migrated away: the SSH endpoint stops taking new sessions, but sessions it
    # carries keep running (the guest still answers them from its new host, on the same segment).
    keep_sessions = fields.Boolean(load_default=False)


class PrepareIncomingRequest(StrictSchema):
    """prepare_incoming (destination of a migration): the guest's network entries and SSH port."""
    instance_id = UuidString(required=True)
    ip = fields.String(required=True)
    mac = fields.String(required=True, validate=validate.Regexp(MAC_PATTERN, error="not a lowercase MAC"))

    @validates("ip")
    def _ip(self, value, **_):
        _check_ip(value)


class IncomingSchema(StrictSchema):
    """Where a migrating guest goes on this host: its SSH port, console log, and how the source
    reaches this host's hypervisor (libvirt URI) and migration network (address)."""
    ssh_port = fields.Integer(allow_none=True)
    console_path = fields.String(allow_none=True)
    migration_uri = fields.String()
    migration_address = fields.String(allow_none=True)
    disk_format = fields.String()  # its pool's: what the root disk made here holds (migrate_domain's)


class MigrateDomainRequest(StrictSchema):
    """migrate_domain (source of a migration): the destination, as its prepare_incoming said, and
    the root disk storage made there."""
    instance_id = UuidString(required=True)
    uri = fields.String(required=True, validate=validate.Length(min=1, max=4096))
    address = fields.String(load_default=None, allow_none=True)
    disk_path = fields.String(required=True, validate=validate.Length(min=1, max=4096))
    console_path = fields.String(load_default=None, allow_none=True)
    ssh_port = fields.Integer(load_default=None, allow_none=True)
    # The destination disk's format (its prepare_incoming's): qcow2 gets the source's top layer
    # copied, raw (a logical pool's LV) the whole disk. Null: qcow2.
    disk_format = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(DISK_FORMATS))


class MigrationResultSchema(StrictSchema):
    moved = fields.Boolean()
    running = fields.Boolean(allow_none=True)   # it arrived running (live) or stopped (cold)
    downtime_ms = fields.Integer(allow_none=True)
    total_ms = fields.Integer(allow_none=True)
    # The test driver only: the definition the destination takes (finish_incoming).
    xml = fields.String(allow_none=True)


class FinishIncomingRequest(StrictSchema):
    instance_id = UuidString(required=True)
    xml = fields.String(load_default=None, allow_none=True)
    start = fields.Boolean(load_default=True)   # the test driver: start what it defines from xml


class StopDomainRequest(StrictSchema):
    instance_id = UuidString(required=True)
    # Seconds the guest gets to shut down after the ACPI power button before it is destroyed.
    timeout = fields.Float(load_default=20, validate=validate.Range(min=0, max=MAX_STOP_TIMEOUT_S))


class StartDomainRequest(StrictSchema):
    instance_id = UuidString(required=True)


class RebootDomainRequest(StrictSchema):
    instance_id = UuidString(required=True)
    # Seconds to wait for the guest to act on the ACPI reboot before destroying and starting it.
    timeout = fields.Float(load_default=20, validate=validate.Range(min=0, max=MAX_STOP_TIMEOUT_S))


class GetConsoleRequest(StrictSchema):
    instance_id = UuidString(required=True)
    max_bytes = fields.Integer(load_default=65536, validate=validate.Range(min=1, max=MAX_CONSOLE_BYTES))


class ConsoleOutputSchema(StrictSchema):
    output = fields.String()


class DomainStateSchema(StrictSchema):
    instance_id = fields.String()
    state = fields.String()
    # Port on 127.0.0.1 of the agent's machine forwarded to the guest's port 22; null when the
    # host has no forwarding (HOST_NETNS empty, as on test:///default).
    ssh_port = fields.Integer(allow_none=True)
    # hostagent.sequence.next_seq() taken right after the state was read from libvirt: a
    # domain_lifecycle event with a higher seq describes a later state.
    seq = fields.Integer()


class DomainLifecycleSchema(StrictSchema):
    """Event `domain_lifecycle`: a labcloud domain changed state (seen from libvirt's callbacks)."""
    host = fields.String()
    instance_id = fields.String()
    state = fields.String()
    at = UtcDateTime()
    seq = fields.Integer(required=True)  # taken in libvirt's callback: the order libvirt reported


class DomainSshReadySchema(StrictSchema):
    """Event `domain_ssh_ready`: after a start, the guest's SSH answered (banner and key exchange)
    from inside the host's namespace."""
    host = fields.String()
    instance_id = fields.String()
    at = UtcDateTime()
    seq = fields.Integer()  # taken when SSH answered


class DhcpEntrySchema(StrictSchema):
    """A labcloud DHCP host entry (named `i-<uuid hex>`) on the host's network."""
    name = fields.String()
    mac = fields.String()
    ip = fields.String()
    instance_id = fields.String()


class SshForwardSchema(StrictSchema):
    instance_id = fields.String()
    port = fields.Integer()


class HostInventorySchema(StrictSchema):
    """`get_inventory()`: everything the host holds for labcloud, for reconciliation."""
    host = fields.String()
    seq = fields.Integer()  # taken before anything below was read: newer reports win over it
    domains = fields.List(fields.Nested(DomainStateSchema))
    volumes = fields.List(fields.Nested(VolumeInfoSchema))  # every volume of the pool
    dhcp_entries = fields.List(fields.Nested(DhcpEntrySchema))
    forwards = fields.List(fields.Nested(SshForwardSchema))
    console_logs = fields.List(fields.String())  # instance ids with a console log


class HeartbeatSchema(StrictSchema):
    host = fields.String()
    hypervisor = fields.String()
    vcpus = fields.Integer()
    memory_mib = fields.Integer()
    disk_gib = fields.Integer(allow_none=True)  # its storage pool's size; null before the pool exists
    pool_kind = fields.String(allow_none=True)  # dir | logical (hostagent/pools); null from older agents
    memory_free_mib = fields.Integer(allow_none=True)  # what the hypervisor says is free
    load_1m = fields.Float(allow_none=True)  # the host's 1-minute load average
    domains = fields.Integer()  # how many labcloud domains this host has defined
    at = UtcDateTime()
    agent_started = fields.Integer()  # sequence.PROCESS_STARTED: changes when the agent restarts


class DiskSampleSchema(StrictSchema):
    device = fields.String()  # the target dev inside the guest: vda, sdb
    read_bytes = fields.Integer(allow_none=True)
    write_bytes = fields.Integer(allow_none=True)
    read_reqs = fields.Integer(allow_none=True)
    write_reqs = fields.Integer(allow_none=True)


class NicSampleSchema(StrictSchema):
    index = fields.Integer()  # the interface's position in the domain XML, XenServer's vif number
    rx_bytes = fields.Integer(allow_none=True)
    tx_bytes = fields.Integer(allow_none=True)


class DomainSampleSchema(StrictSchema):
    """One domain in a stats sample; a counter is null when the hypervisor cannot tell."""
    instance_id = fields.String()
    state = fields.String()
    vcpus = fields.Integer(allow_none=True)
    cpu_time_ns = fields.Integer(allow_none=True)
    memory_kib = fields.Integer(allow_none=True)
    disk_read_bytes = fields.Integer(allow_none=True)
    disk_write_bytes = fields.Integer(allow_none=True)
    net_rx_bytes = fields.Integer(allow_none=True)
    net_tx_bytes = fields.Integer(allow_none=True)
    # Per device (XenServer's data sources: cpuN, memory_internal_free, vbd_<dev>_*, vif_<n>_*).
    vcpu_time_ns = fields.List(fields.Integer(allow_none=True), allow_none=True)  # index = vCPU
    memory_internal_free_kib = fields.Integer(allow_none=True)  # the guest's balloon driver says
    disks = fields.List(fields.Nested(DiskSampleSchema))
    nics = fields.List(fields.Nested(NicSampleSchema))


class HostInterfaceSampleSchema(StrictSchema):
    name = fields.String()
    rx_bytes = fields.Integer()
    tx_bytes = fields.Integer()


class HostSampleSchema(StrictSchema):
    """The host itself at the same instant as its domains (hostagent/host_stats.py)."""
    cpu_busy_ns = fields.List(fields.Integer(allow_none=True))  # per core, user + kernel time
    memory_total_kib = fields.Integer(allow_none=True)
    memory_free_kib = fields.Integer(allow_none=True)
    load_1m = fields.Float(allow_none=True)
    interfaces = fields.List(fields.Nested(HostInterfaceSampleSchema))


class DomainStatsSchema(StrictSchema):
    host = fields.String()
    at = UtcDateTime()
    domains = fields.List(fields.Nested(DomainSampleSchema))
    host_sample = fields.Nested(HostSampleSchema, allow_none=True)


# ----- security-group filters and floating-IP NAT (hostagent/netfilter.py) -----
PROTOCOLS = ("tcp", "udp", "icmp", "any")


class FilterRuleSchema(StrictSchema):
    protocol = fields.String(required=True, validate=validate.OneOf(PROTOCOLS))
    port_min = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0, max=65535))
    port_max = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0, max=65535))
    # The peers' networks (a source for ingress, a destination for egress); empty: matches nothing.
    peers = fields.List(fields.String(validate=validate.Length(max=18)), required=True)

    @validates("peers")
    def _peers(self, values, **_):
        for value in values:
            try:
                ipaddress.IPv4Network(value, strict=False)
            except ValueError:
                raise ValidationError(f"not an IPv4 network: {value!r}") from None

    @validates_schema
    def _ports(self, data, **_):
        if data["protocol"] in ("tcp", "udp") and (data.get("port_min") is None or data.get("port_max") is None):
            raise ValidationError("tcp and udp rules need port_min and port_max", "port_min")


class FilteredPortSchema(StrictSchema):
    ip = fields.String(required=True, validate=_check_ip)
    ingress = fields.List(fields.Nested(FilterRuleSchema), required=True)
    egress = fields.List(fields.Nested(FilterRuleSchema), required=True)


class FloatingNatSchema(StrictSchema):
    floating_ip = fields.String(required=True, validate=_check_ip)
    fixed_ip = fields.String(required=True, validate=_check_ip)
    subnet = fields.String(required=True, validate=validate.Length(max=18))   # the fixed IP's subnet


class NetworkRulesRequest(StrictSchema):
    """Everything this host filters and NATs: the whole table, replaced at once."""
    ports = fields.List(fields.Nested(FilteredPortSchema), required=True)
    floating = fields.List(fields.Nested(FloatingNatSchema), required=True)


class NetworkRulesSchema(NetworkRulesRequest):
    """What the agent applied last (and, with a namespace, the floating IPs it routes locally)."""
    applied = fields.Boolean()
    local_routes = fields.List(fields.String())
