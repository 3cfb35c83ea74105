"""Reading a request: the bearer token, the body (JSON or CSV) and query parameters, each
checked for shape only (what the OpenAPI document promises); what the values mean is the
services' business."""
import base64
import json
import sys

from flask import request

from common.errors import InvalidInput, LabcloudError, Unauthorized
from common.schemas import MAX_ID


class InvalidJson(InvalidInput):
    """Gateway-local: the body is not JSON at all (never crosses RPC)."""
    code = "invalid_json"


class UnsupportedMediaType(LabcloudError):
    """Gateway-local: a body in a content type the route does not take."""
    http_status = 415
    code = "unsupported_media_type"


BODY_TYPES = {"json": "application/json", "csv": "text/csv", "binary": "application/octet-stream"}


def bearer_token():
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthorized("an 'Authorization: Bearer <token>' header is required")
    return token


def basic_credentials():
    """(username, password) of an 'Authorization: Basic' header, else Unauthorized."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    try:
        if scheme.lower() != "basic":
            raise ValueError
        username, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        if not sep or not username or not password:
            raise ValueError
    except (ValueError, UnicodeDecodeError):
        raise Unauthorized("an 'Authorization: Basic' header with a labcloud username and password "
                           "is required") from None
    return username, password


def _raw_body(body_type):
    """The body's bytes, or None when empty. A non-empty body must come in the route's type."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return None
    expected = BODY_TYPES[body_type]
    if request.mimetype != expected:
        raise UnsupportedMediaType(
            f"the body must be {expected}, not {request.mimetype or 'untyped'}",
            {"Content-Type": [f"expected {expected}"]})
    return raw


def json_body():
    """The request body as JSON; an empty body is None (the schema then reports required fields)."""
    raw = _raw_body("json")
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:  # includes UnicodeDecodeError
        raise InvalidJson("the request body is not valid JSON") from None


def csv_body():
    """A text/csv body as a string (UTF-8, a byte-order mark tolerated)."""
    raw = _raw_body("csv")
    if raw is None:
        raise InvalidInput("the CSV file is empty", {"csv": ["empty file"]})
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the CSV file is not UTF-8 text", {"csv": ["not UTF-8 text"]}) from None


class BinaryBody:
    """A request body read as it arrives, never whole: `read_chunk()` returns up to `size` bytes
    (b"" at the end). The app's MAX_CONTENT_LENGTH does not apply: the service the bytes go to
    keeps its own limit."""

    def __init__(self, stream, length):
        self.stream, self.length = stream, length

    def read_chunk(self, size):
        parts, wanted = [], size
        while wanted:
            part = self.stream.read(wanted)
            if not part:
                break
            parts.append(part)
            wanted -= len(part)
        return b"".join(parts)


def binary_body():
    # Flask reads None as "the app's limit": lift it with a number no upload reaches.
    request.max_content_length = sys.maxsize
    if request.mimetype != BODY_TYPES["binary"]:
        raise UnsupportedMediaType(f"the body must be application/octet-stream, not {request.mimetype or 'untyped'}",
                                   {"Content-Type": ["expected application/octet-stream"]})
    return BinaryBody(request.stream, request.content_length)


def _invalid(name, message):
    return InvalidInput(f"invalid value for: {name}", {name: [message]})


def query_int(param):
    value = request.args.get(param.name)
    if value is None:
        return param.default
    try:
        number = int(value)
    except ValueError:
        raise _invalid(param.name, "Not a valid integer.") from None
    low = param.minimum if param.minimum is not None else -MAX_ID - 1
    high = param.maximum if param.maximum is not None else MAX_ID
    if not low <= number <= high:
        raise _invalid(param.name, f"Must be between {low} and {high}.")
    return number


def query_bool(param):
    """true/false (or 1/0); anything else is a 400 naming it."""
    value = request.args.get(param.name)
    if value is None:
        return param.default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise _invalid(param.name, "Not a valid boolean (true or false).")


def query_string(param):
    value = request.args.get(param.name)
    if value is None:
        return param.default
    if param.max_length is not None and len(value) > param.max_length:
        raise _invalid(param.name, f"Longer than {param.max_length} characters.")
    return value


QUERY_READERS = {"integer": query_int, "boolean": query_bool, "string": query_string}
