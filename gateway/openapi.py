"""The OpenAPI 3 document, generated from the route registry and the services' own marshmallow
schemas, so the documentation is the code that validates and routes."""
import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from common.schemas import MAX_ID
from gateway.converters import HOST_NAME_PATTERN, IPV4_PATTERN
from gateway.schemas import ErrorSchema

OPENAPI_VERSION = "3.0.3"
_RULE_ARG = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
_CONVERTER_SCHEMAS = {
    None: {"type": "string"},
    "string": {"type": "string"},
    "int": {"type": "integer", "minimum": 0},
    "id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    "uuid": {"type": "string", "format": "uuid"},
    "host_name": {"type": "string", "pattern": HOST_NAME_PATTERN, "maxLength": 48},
    "ipv4": {"type": "string", "pattern": IPV4_PATTERN, "maxLength": 15},
}


def _error(description):
    # A name string is turned into {"$ref": "#/components/schemas/Error"} by apispec.
    return {"description": description, "content": {"application/json": {"schema": "Error"}}}


def openapi_path(rule):
    """Flask rule -> (OpenAPI path, path parameters): /keys/<int:key_id> -> /keys/{key_id}."""
    params = [{"name": name, "in": "path", "required": True,
               "schema": dict(_CONVERTER_SCHEMAS.get(converter, {"type": "string"}))}
              for converter, name in _RULE_ARG.findall(rule)]
    return _RULE_ARG.sub(lambda m: "{%s}" % m.group(2), rule), params


ERROR_DESCRIPTIONS = {
    400: "invalid body or parameter (error.fields names each)",
    401: "missing, unknown, expired or revoked token",
    403: "not allowed by the policy, or over quota (error.fields names the resource)",
    404: "not found, or not yours to see (or a malformed id)",
    409: "conflicts with the current state (error.fields names what)",
    413: "body too large",
    415: "body in the wrong content type",
    429: "too many requests; the Retry-After header says when to try again",
    502: "a hypervisor host could not carry it out; nothing was changed (error.message says why)",
    503: "a service (or the capacity it needs) is not available; try again later",
    504: "a service did not answer in time",
}


def _error_statuses(route, path_params):
    statuses = set(route.errors)
    if route.body is not None or route.query:
        statuses.add(400)
    if route.auth:
        statuses.update((401, 403))
    if path_params:
        statuses.add(404)
    if route.body is not None:
        statuses.update((413, 415))
    if route.uses_rpc:
        statuses.update((503, 504))
    return sorted(statuses)


def _query_parameter(param):
    schema = {"type": param.type}
    if param.default is not None:
        schema["default"] = param.default
    for key in ("minimum", "maximum", "format"):
        if getattr(param, key) is not None:
            schema[key] = getattr(param, key)
    if param.max_length is not None:
        schema["maxLength"] = param.max_length
    return {"name": param.name, "in": "query", "required": False, "description": param.description,
            "schema": schema}


def _request_body(route):
    if route.body_type == "csv":
        return {"required": True, "content": {"text/csv": {"schema": {
            "type": "string", "description": "a CSV file with a header line"}}}}
    if route.body_type == "binary":
        return {"required": True, "content": {"application/octet-stream": {"schema": {
            "type": "string", "format": "binary", "description": route.body}}}}
    # A body whose fields are all optional may be left out (POST /users/{id}/approve).
    schema = route.body() if isinstance(route.body, type) else route.body
    required = any(field.required for field in schema.fields.values())
    return {"required": required, "content": {"application/json": {"schema": route.body}}}


def _operation(route, path_params):
    response_schema = route.response
    if route.many:
        response_schema = {"type": "array", "items": response_schema}
    # A route may answer in several content types (rrd_updates: XML, or JSON with json=true).
    content_types = route.content_type if isinstance(route.content_type, tuple) else (route.content_type,)
    responses = {str(route.status): {
        "description": route.summary,
        "content": {kind: {"schema": response_schema} for kind in content_types},
    }}
    for status in _error_statuses(route, path_params):
        responses[str(status)] = _error(ERROR_DESCRIPTIONS[status])
    responses["default"] = _error("error")

    operation = {
        "operationId": route.endpoint,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": path_params + [_query_parameter(q) for q in route.query],
        "responses": responses,
        # An empty list overrides the global requirement: this operation is public.
        "security": [{f"{route.auth_scheme}Auth": []}] if route.auth else [],
    }
    if route.body is not None:
        operation["requestBody"] = _request_body(route)
    return operation


def build_spec(routes, title="labcloud API", version="1"):
    """routes: resolved `gateway.routes.Route`s. Returns the document as a dict."""
    spec = APISpec(title=title, version=version, openapi_version=OPENAPI_VERSION,
                   plugins=[MarshmallowPlugin()],
                   info={"description": "REST API of labcloud, a private IaaS cloud."},
                   security=[{"bearerAuth": []}])
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("basicAuth", {"type": "http", "scheme": "basic"})
    spec.components.schema("Error", schema=ErrorSchema)

    operations = {}
    for route in routes:
        path, params = openapi_path(route.rule)
        operations.setdefault(path, ({}, params))[0][route.method.lower()] = _operation(route, params)
    for path, (ops, _) in operations.items():
        spec.path(path=path, operations=ops)
    return spec.to_dict()
