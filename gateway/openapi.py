"""The OpenAPI 3 document, generated from the route registry and the services' own marshmallow
schemas, so the documentation is the code that validates and routes."""
import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from gateway.schemas import ErrorSchema

OPENAPI_VERSION = "3.0.3"
_RULE_ARG = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
_CONVERTER_SCHEMAS = {
    None: {"type": "string"},
    "string": {"type": "string"},
    "int": {"type": "integer", "minimum": 0},
    "uuid": {"type": "string", "format": "uuid"},
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


def _operation(route, path_params):
    response_schema = route.response
    if route.many:
        response_schema = {"type": "array", "items": response_schema}
    responses = {str(route.status): {
        "description": route.summary,
        "content": {route.content_type: {"schema": response_schema}},
    }}
    if route.body is not None or route.query:
        responses["400"] = _error("invalid body or parameter")
    if route.auth:
        responses["401"] = _error("missing, unknown or expired token")
    if path_params:
        responses["404"] = _error("not found (or malformed id)")
    responses["default"] = _error("error")

    operation = {
        "operationId": route.endpoint,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": path_params + [
            {"name": q.name, "in": "query", "required": False, "description": q.description,
             "schema": {"type": q.type, "default": q.default}} for q in route.query],
        "responses": responses,
        # An empty list overrides the global requirement: this operation is public.
        "security": [{"bearerAuth": []}] if route.auth else [],
    }
    if route.body is not None:
        operation["requestBody"] = {
            "required": True, "content": {"application/json": {"schema": route.body}}}
    return operation


def build_spec(routes, title="labcloud API", version="1"):
    """routes: resolved `gateway.routes.Route`s. Returns the document as a dict."""
    spec = APISpec(title=title, version=version, openapi_version=OPENAPI_VERSION,
                   plugins=[MarshmallowPlugin()],
                   info={"description": "REST API of labcloud, a private IaaS cloud."},
                   security=[{"bearerAuth": []}])
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", schema=ErrorSchema)

    operations = {}
    for route in routes:
        path, params = openapi_path(route.rule)
        operations.setdefault(path, ({}, params))[0][route.method.lower()] = _operation(route, params)
    for path, (ops, _) in operations.items():
        spec.path(path=path, operations=ops)
    return spec.to_dict()
