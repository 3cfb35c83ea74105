"""URL converters. `<id:name>` matches a database id: 1..2**63-1. Anything else (0, a number
beyond 64 bits, text) matches no route, so the answer is 404 before any RPC, never an overflow."""
from werkzeug.routing import BaseConverter, ValidationError

from common.schemas import MAX_ID
from services.instances.schemas import HOST_NAME_REGEX


class IdConverter(BaseConverter):
    regex = r"[1-9][0-9]{0,18}"

    def to_python(self, value):
        number = int(value)
        if number > MAX_ID:
            raise ValidationError()
        return number

    def to_url(self, value):
        return str(int(value))


class HostNameConverter(BaseConverter):
    """A hypervisor host's name (as its agent reports it): anything else matches no route."""
    regex = HOST_NAME_REGEX


class Ipv4Converter(BaseConverter):
    """A dotted IPv4 address (the service checks the octets and names the field)."""
    regex = r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}"


HOST_NAME_PATTERN = "^" + HostNameConverter.regex + "$"
IPV4_PATTERN = "^" + Ipv4Converter.regex + "$"
CONVERTERS = {"id": IdConverter, "host_name": HostNameConverter, "ipv4": Ipv4Converter}
