"""The route registry: one declaration per endpoint feeds both Flask and the OpenAPI document.

A view is a plain function of the RPC cluster proxy plus whatever the declaration asks for:
`actor` (auth=True), `body` (body=...), and the URL's path arguments. The wrapper built here does
the HTTP side in a fixed order, cheapest first: bearer header present (no RPC), body parses and
validates against the service's own schema (no RPC), `accounts.authenticate` (one RPC), the view.
"""
import dataclasses
import importlib
import json
import uuid

from flask import Response, current_app, jsonify, request

from common.errors import InvalidInput, Unauthorized
from common.schemas import load
from gateway.errors import InvalidJson


@dataclasses.dataclass
class QueryParam:
    name: str
    type: str  # OpenAPI type: "integer", "boolean" or "string"
    default: object = None
    description: str = ""


@dataclasses.dataclass
class Route:
    method: str
    rule: str  # Flask rule, e.g. /api/v1/users/<int:user_id>
    view: object
    summary: str
    tag: str
    body: object = None  # schema class, or "module:Class" resolved by `resolve`
    response: object = None  # schema class, "module:Class", or a plain OpenAPI schema dict
    many: bool = False  # response is a JSON array of `response`
    status: int = 200
    auth: bool = True
    uses_rpc: bool = True  # False for /healthz, /metrics, openapi.json: served without a proxy
    query: tuple = ()
    content_type: str = "application/json"

    @property
    def endpoint(self):
        return self.view.__name__


def resolve(ref):
    """'services.accounts.schemas:UserSchema' -> the class. References stay strings until the app
    is created, so importing the gateway does not need every service's package importable."""
    if not isinstance(ref, str):
        return ref
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


class RouteRegistry:
    def __init__(self):
        self.routes = []

    def route(self, method, rule, *, summary, tag, **options):
        def decorator(view):
            self.routes.append(Route(method=method, rule=rule, view=view, summary=summary,
                                     tag=tag, **options))
            return view
        return decorator

    def resolved(self):
        """The routes with their schema references imported (raises at startup if one is missing)."""
        return [dataclasses.replace(r, body=resolve(r.body), response=resolve(r.response))
                for r in self.routes]

    def install(self, app, routes):
        for route in routes:
            app.add_url_rule(route.rule, endpoint=route.endpoint, view_func=_wrap(route),
                             methods=[route.method])


def bearer_token():
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthorized("an 'Authorization: Bearer <token>' header is required")
    return token


def json_body():
    """The request body as JSON; an empty body is None (the schema then reports required fields)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:  # includes UnicodeDecodeError
        raise InvalidJson("the request body is not valid JSON") from None


def query_int(name, default):
    """An integer query parameter; its range is the service's business, not the gateway's."""
    value = request.args.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"invalid value for: {name}", {name: ["Not a valid integer."]}) from None


def query_bool(name, default):
    """A boolean query parameter: true/false (or 1/0); anything else is a 400 naming it."""
    value = request.args.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise InvalidInput(f"invalid value for: {name}", {name: ["Not a valid boolean (true or false)."]})


QUERY_READERS = {"integer": query_int, "boolean": query_bool}


def _wrap(route):
    def view(**path_args):
        # werkzeug's uuid converter yields uuid.UUID; RPC carries plain JSON values.
        kwargs = {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in path_args.items()}
        token = bearer_token() if route.auth else None
        for param in route.query:
            reader = QUERY_READERS.get(param.type)
            kwargs[param.name] = (reader(param.name, param.default) if reader
                                  else request.args.get(param.name, param.default))
        if route.body is not None:
            body = json_body()
            # Validation only: the raw body is what goes over RPC, because the service loads it
            # again with the same schema and a loaded dict (defaults, datetimes) may not re-load.
            load(route.body, body)
            kwargs["body"] = {} if body is None else body
        if not route.uses_rpc:
            result = route.view(**kwargs)
        else:
            with current_app.extensions["rpc_pool"].checkout() as rpc:
                if route.auth:
                    kwargs["actor"] = rpc.accounts.authenticate(token)
                result = route.view(rpc, **kwargs)
        if isinstance(result, Response):
            return result
        response = jsonify(result)
        response.status_code = route.status
        return response
    view.__name__ = route.endpoint
    return view
