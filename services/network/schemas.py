"""RPC payloads of the network service."""
import ipaddress

from marshmallow import ValidationError, fields, validate, validates, validates_schema

from common.hostrpc import HOST_NAME_PATTERN
from common.schemas import Id, StrictSchema, UtcDateTime

SUBNET_NAME = r"^[a-z0-9][a-z0-9-]{0,63}$"
SUBNET_MODES = ("bridged", "routed")
IPV4 = dict(validate=validate.Length(max=15))   # the validators below say what is wrong


def _network(value, longest):
    """The IPv4 network `value` (its host bits zero), /8 to /`longest`."""
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValidationError(f"not an IPv4 network: {exc}") from None
    if not 8 <= net.prefixlen <= longest:
        raise ValidationError(f"from /8 to /{longest}")
    return net


def _ipv4(value):
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise ValidationError("not an IPv4 address") from None


class AllocateAddressRequest(StrictSchema):
    owner = fields.String(required=True, validate=validate.Length(min=1, max=64))
    subnet = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    # The owner's project: its block of the subnet (if it has one) is where the address comes from.
    project = Id(load_default=None, allow_none=True)
    # Where the instance runs: its filter and floating-IP rules go there (host_rules.py).
    host = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=64))


class ReleaseAddressRequest(StrictSchema):
    owner = fields.String(required=True, validate=validate.Length(min=1, max=64))


class CreateSubnetRequest(StrictSchema):
    name = fields.String(required=True, validate=validate.Regexp(SUBNET_NAME))
    cidr = fields.String(required=True, metadata={"description": "a private IPv4 network, /8 to /29"})
    gateway = fields.String(load_default=None, metadata={"description": "default: the first host address"}, **IPV4)
    allocation_start = fields.String(load_default=None, metadata={
        "description": "the first address guests get (default: the first host address; Orca used .20)"}, **IPV4)
    allocation_end = fields.String(load_default=None, metadata={
        "description": "the last address guests get (default: the last host address)"}, **IPV4)
    dns_servers = fields.List(fields.String(**IPV4), load_default=list, validate=validate.Length(max=4))
    reserved = fields.List(fields.String(**IPV4), load_default=list, validate=validate.Length(max=256),
                           metadata={"description": "addresses no guest gets"})
    mac_policy = fields.String(load_default="orca", validate=validate.OneOf(["orca", "random"]), metadata={
        "description": "orca: aa:00 + the IPv4 bytes (a list admins can pre-approve); random: locally administered"})
    is_default = fields.Boolean(load_default=False)
    mode = fields.String(load_default="bridged", validate=validate.OneOf(SUBNET_MODES), metadata={
        "description": "bridged: guests on the hosts' shared segment; routed: one host is the guests' gateway "
                       "and routes their addresses (its upstream routes the subnet to that host)"})
    host = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(
        HOST_NAME_PATTERN, error="not a host name (lower-case letters, digits and '-', at most 48)"), metadata={
        "description": "the host a routed subnet is routed to (required for routed, refused for bridged)"})

    @validates("cidr")
    def _cidr(self, value, **_):
        _network(value, 29)

    @validates_schema(skip_on_field_errors=True)
    def _mode(self, data, **_):
        routed = data["mode"] == "routed"
        if routed and not data["host"]:
            raise ValidationError("required for a routed subnet", "host")
        if not routed and data["host"]:
            raise ValidationError("only a routed subnet has a host", "host")
        if routed and data["is_default"]:
            # The default subnet is where any host's guests go when nothing else is chosen.
            raise ValidationError("a routed subnet serves one host: it cannot be the default", "is_default")
        # A routed subnet's upstream routes it to the host: it may be public (a provider's
        # routed subnet); a bridged one is a private network of the hosts.
        if not routed and not ipaddress.IPv4Network(data["cidr"]).is_private:
            raise ValidationError("labcloud's bridged subnets must be private ranges", "cidr")

    @validates("gateway", "allocation_start", "allocation_end")
    def _address(self, value, **_):
        if value is not None:
            _ipv4(value)

    @validates("dns_servers", "reserved")
    def _addresses(self, values, **_):
        for value in values:
            _ipv4(value)


class SubnetIdSchema(StrictSchema):
    subnet_id = Id(required=True)


class ReserveAddressRequest(StrictSchema):
    ip = fields.String(required=True, **IPV4)
    note = fields.String(load_default="", validate=validate.Length(max=255))

    @validates("ip")
    def _ip(self, value, **_):
        _ipv4(value)


class ReserveBlockRequest(StrictSchema):
    prefixlen = fields.Integer(required=True, validate=validate.Range(min=22, max=28), metadata={
        "description": "the block's size: /28 (16 addresses) to /22 (1024)"})
    subnet = fields.String(load_default=None, validate=validate.Regexp(SUBNET_NAME), metadata={
        "description": "the subnet to take it from (default: the default subnet)"})
    ends_at = UtcDateTime(load_default=None, allow_none=True, metadata={
        "description": "when it goes back (once its guests' addresses are free); null: when ended"})


class SubnetBlockSchema(StrictSchema):
    id = fields.Integer()
    project = fields.Integer()
    subnet = fields.String()
    cidr = fields.String()
    size = fields.Integer()
    allocated = fields.Integer(metadata={"description": "addresses the course's guests hold in it"})
    free = fields.Integer()
    created_at = UtcDateTime()
    ends_at = UtcDateTime(allow_none=True)


class ProjectIdSchema(StrictSchema):
    project_id = Id(required=True)


class AddressSchema(StrictSchema):
    owner = fields.String()
    subnet = fields.String()
    cidr = fields.String()
    ip = fields.String()
    mac = fields.String()
    gateway = fields.String()
    prefixlen = fields.Integer()
    dns_servers = fields.List(fields.String())
    allocated_at = UtcDateTime()
    mode = fields.String(metadata={"description": "the subnet's mode: bridged or routed"})
    network = fields.String(allow_none=True, metadata={
        "description": "routed: the libvirt network the guest joins on its host (made by the host agent); "
                       "bridged: null (the host's own network)"})


class SubnetSchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    cidr = fields.String()
    gateway = fields.String()
    is_default = fields.Boolean()
    allocation_start = fields.String()
    allocation_end = fields.String()
    dns_servers = fields.List(fields.String())
    reserved = fields.List(fields.String())
    mac_policy = fields.String()
    mode = fields.String(metadata={"description": "bridged or routed"})
    host = fields.String(allow_none=True, metadata={"description": "the host a routed subnet is routed to"})
    allocated = fields.Integer(metadata={"description": "addresses guests hold"})
    free = fields.Integer(metadata={"description": "addresses guests can still get"})
    capacity = fields.Integer(metadata={"description": "allocated + free"})


class MacEntrySchema(StrictSchema):
    ip = fields.String()
    mac = fields.String()


# ----- floating IPs (floating.py) -----
class CreateFloatingPoolRequest(StrictSchema):
    name = fields.String(required=True, validate=validate.Regexp(SUBNET_NAME))
    cidr = fields.String(required=True, metadata={"description": "an IPv4 network, /8 to /32: the pool's addresses"})
    allocation_start = fields.String(load_default=None, metadata={"description": "default: the first host address"},
                                     **IPV4)
    allocation_end = fields.String(load_default=None, metadata={"description": "default: the last host address"},
                                   **IPV4)
    reserved = fields.List(fields.String(**IPV4), load_default=list, validate=validate.Length(max=256),
                           metadata={"description": "addresses nobody gets"})

    @validates("cidr")
    def _cidr(self, value, **_):
        _network(value, 30)

    @validates("allocation_start", "allocation_end")
    def _address(self, value, **_):
        if value is not None:
            _ipv4(value)

    @validates("reserved")
    def _addresses(self, values, **_):
        for value in values:
            _ipv4(value)


class AllocateFloatingIpRequest(StrictSchema):
    project = Id(required=True, metadata={"description": "the course the address is for"})
    pool = fields.String(load_default=None, validate=validate.Regexp(SUBNET_NAME),
                         metadata={"description": "default: the first pool"})


class AssociateFloatingIpRequest(StrictSchema):
    instance = fields.UUID(required=True, metadata={"description": "an instance of the same course"})


class FloatingIpSchema(StrictSchema):
    id = fields.Integer()
    ip = fields.String()
    pool = fields.String(allow_none=True)
    project = fields.Integer(allow_none=True)
    user_id = fields.Integer(allow_none=True)
    instance = fields.String(allow_none=True, metadata={"description": "the associated instance"})
    fixed_ip = fields.String(allow_none=True, metadata={"description": "its address the floating IP is NATed to"})
    allocated_at = UtcDateTime()


class FloatingIpIdSchema(StrictSchema):
    floating_ip_id = Id(required=True)


# ----- security groups (security_groups.py) -----
SECGROUP_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class CreateSecurityGroupRequest(StrictSchema):
    project = Id(required=True)
    name = fields.String(required=True, validate=validate.Regexp(SECGROUP_NAME))
    description = fields.String(load_default="", validate=validate.Length(max=255))


class SecurityGroupRuleRequest(StrictSchema):
    direction = fields.String(load_default="ingress", validate=validate.OneOf(["ingress", "egress"]))
    protocol = fields.String(required=True, validate=validate.OneOf(["tcp", "udp", "icmp", "any"]))
    port_min = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=65535))
    port_max = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=65535))
    cidr = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=18),
                         metadata={"description": "the peer network (ingress: source, egress: destination)"})
    remote_group = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(SECGROUP_NAME),
                                 metadata={"description": "or: the members of this group of the same course"})


class SecurityGroupRuleSchema(StrictSchema):
    id = fields.Integer()
    direction = fields.String()
    protocol = fields.String()
    port_min = fields.Integer(allow_none=True)
    port_max = fields.Integer(allow_none=True)
    cidr = fields.String(allow_none=True)
    remote_group = fields.String(allow_none=True)
    remote_group_id = fields.Integer(allow_none=True)


class SecurityGroupSchema(StrictSchema):
    id = fields.Integer()
    project = fields.Integer()
    name = fields.String()
    description = fields.String()
    rules = fields.List(fields.Nested(SecurityGroupRuleSchema))
    instances = fields.List(fields.String(), metadata={"description": "instances in the group"})
    created_at = UtcDateTime()


class SecurityGroupIdSchema(StrictSchema):
    group_id = Id(required=True)


class BindSecurityGroupsRequest(StrictSchema):
    owner = fields.String(required=True, validate=validate.Length(min=1, max=64))
    project = Id(required=True)
    security_groups = fields.List(fields.String(validate=validate.Regexp(SECGROUP_NAME)), load_default=None,
                                  allow_none=True, validate=validate.Length(min=1, max=8))


class InstanceSecurityGroupsRequest(StrictSchema):
    security_groups = fields.List(fields.String(validate=validate.Regexp(SECGROUP_NAME)), required=True,
                                  validate=validate.Length(min=1, max=8))


class PortHostRequest(StrictSchema):
    owner = fields.String(required=True, validate=validate.Length(min=1, max=64))
    host = fields.String(required=True, validate=validate.Length(min=1, max=64))
    moving_to = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=64))


class NetworkSyncSchema(StrictSchema):
    hosts = fields.Dict(keys=fields.String(), values=fields.Boolean(),
                        metadata={"description": "host -> its rules applied"})
