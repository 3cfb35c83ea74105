"""Errors that cross RPC boundaries.

Each class is registered with nameko's `deserialize_to_instance`, so a caller receives the same
exception type (with its `fields`) instead of a bare RemoteError. `http_status` is what the gateway
answers with; services never think in HTTP, they only pick the right class.
"""
from nameko.exceptions import deserialize_to_instance


class LabcloudError(Exception):
    http_status = 500
    code = "internal_error"

    def __init__(self, message, fields=None):
        super().__init__(message, fields or {})
        self.message = message
        self.fields = fields or {}

    def __str__(self):
        return self.message

    def to_dict(self):
        return {"code": self.code, "message": self.message, "fields": self.fields}


@deserialize_to_instance
class InvalidInput(LabcloudError):
    http_status = 400
    code = "invalid_input"


@deserialize_to_instance
class Unauthorized(LabcloudError):
    http_status = 401
    code = "unauthorized"


@deserialize_to_instance
class Forbidden(LabcloudError):
    http_status = 403
    code = "forbidden"


@deserialize_to_instance
class NotFound(LabcloudError):
    http_status = 404
    code = "not_found"


@deserialize_to_instance
class Conflict(LabcloudError):
    http_status = 409
    code = "conflict"


@deserialize_to_instance
class QuotaExceeded(Forbidden):
    """A create, start, resize or attach would take a project (or a user in it) over its quota.
    `fields` names each resource: {"vcpus": ["limit 8, in use 6, requested 4"]}."""
    code = "quota_exceeded"


@deserialize_to_instance
class RateLimited(LabcloudError):
    """Too many requests of one kind from one client or for one account; retry after
    `retry_after` seconds (the gateway sends it as the Retry-After header)."""
    http_status = 429
    code = "rate_limited"

    def __init__(self, message, fields=None, retry_after=1):
        super().__init__(message, fields)
        self.retry_after = max(1, int(retry_after))
        self.args = (message, self.fields, self.retry_after)  # what nameko sends over RPC


@deserialize_to_instance
class CapacityExhausted(LabcloudError):
    """No host, address or disk space is left for the request."""
    http_status = 503
    code = "capacity_exhausted"


@deserialize_to_instance
class HostOperationFailed(LabcloudError):
    """A hypervisor-side operation (libvirt, storage) failed on a host."""
    http_status = 502
    code = "host_operation_failed"


@deserialize_to_instance
class TooLarge(InvalidInput):
    """An upload past a configured size limit (`fields` names what is too large)."""
    http_status = 413
    code = "too_large"
