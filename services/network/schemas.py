"""RPC payloads of the network service."""
import ipaddress

from marshmallow import fields, validate, validates, ValidationError

from common.schemas import StrictSchema, UtcDateTime



class AllocateAddressRequest(StrictSchema):
    owner = fields.String(required=True, validate=validate.Length(min=1, max=64))
    subnet = fields.String(load_default=None, validate=validate.Length(min=1, max=64))


class ReleaseAddressRequest(StrictSchema):
    owner = fields.String(required=True, validate=validate.Length(min=1, max=64))


class CreateSubnetRequest(StrictSchema):
    name = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,63}$"))
    cidr = fields.String(required=True)
    is_default = fields.Boolean(load_default=False)

    @validates("cidr")
    def _cidr(self, value, **_):
        try:
            net = ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise ValidationError(f"not an IPv4 network: {exc}") from None
        if net.prefixlen > 29:
            raise ValidationError("a subnet needs at least /29")
        if not net.is_private:
            raise ValidationError("labcloud subnets must be private ranges")


class AddressSchema(StrictSchema):
    owner = fields.String()
    subnet = fields.String()
    cidr = fields.String()
    ip = fields.String()
    mac = fields.String()
    gateway = fields.String()
    prefixlen = fields.Integer()
    allocated_at = UtcDateTime()


class SubnetSchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    cidr = fields.String()
    gateway = fields.String()
    is_default = fields.Boolean()
    allocated = fields.Integer()
    capacity = fields.Integer()
