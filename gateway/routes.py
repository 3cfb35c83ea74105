"""The route registry: one declaration per endpoint feeds both Flask and the OpenAPI document.

A view is a plain function of the RPC cluster proxy plus whatever the declaration asks for:
`actor` (auth=True), `body` (body=...), `client` (client=True: the caller's address), `token`
(token=True: the caller's own bearer token), query parameters and the URL's path arguments. The
wrapper built here does the HTTP side in a fixed order, cheapest first: bearer header present (no
RPC), query and body parse and validate against the service's own schema (no RPC), the token
(one `accounts.authenticate`, or none when the token cache knows it), the view (one RPC).
"""
import dataclasses
import importlib
import uuid

from flask import Response, current_app, g, jsonify, request

from common.schemas import load
from gateway import http_input


@dataclasses.dataclass
class QueryParam:
    name: str
    type: str  # OpenAPI type: "integer", "boolean" or "string"
    default: object = None
    description: str = ""
    minimum: int = None
    maximum: int = None
    format: str = None  # OpenAPI format of a string, e.g. "date-time"
    max_length: int = None


@dataclasses.dataclass
class Route:
    method: str
    rule: str  # Flask rule, e.g. /api/v1/users/<id:user_id>
    view: object
    summary: str
    tag: str
    body: object = None  # schema class, or "module:Class" resolved by `resolve`
    body_type: str = "json"  # "json"; "csv": the body goes to the view as text; "binary": as a stream
    response: object = None  # schema class, "module:Class", or a plain OpenAPI schema dict
    many: bool = False  # response is a JSON array of `response`
    status: int = 200
    auth: bool = True
    uses_rpc: bool = True  # False for /healthz, /metrics, openapi.json: served without a proxy
    query: tuple = ()
    content_type: object = "application/json"  # or a tuple of the types it may answer in
    client: bool = False
    token: bool = False
    errors: tuple = ()  # HTTP statuses this route can answer besides the usual ones (OpenAPI)
    # "bearer", or "basic": a labcloud username and password (gateway/basic_auth.py), for the
    # XenServer-compatible routes whose clients know no tokens
    auth_scheme: str = "bearer"

    @property
    def endpoint(self):
        return self.view.__name__

    @property
    def has_body(self):
        return self.body is not None


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
        return [dataclasses.replace(r, body=resolve(r.body) if r.body_type == "json" else r.body,
                                    response=resolve(r.response))
                for r in self.routes]

    def install(self, app, routes):
        for route in routes:
            app.add_url_rule(route.rule, endpoint=route.endpoint, view_func=_wrap(route),
                             methods=[route.method])


def _read_body(route):
    if route.body_type == "csv":
        return http_input.csv_body()
    if route.body_type == "binary":
        return http_input.binary_body()
    body = http_input.json_body()
    # Validation only: the raw body is what goes over RPC, because the service loads it again
    # with the same schema and a loaded dict (defaults, datetimes) may not re-load.
    load(route.body, body)
    return {} if body is None else body


def _note_for_audit(kwargs):
    """What the audit record needs that only the request knows: the project it acts for."""
    body = kwargs.get("body")
    project = kwargs.get("project_id") or kwargs.get("project")
    if isinstance(body, dict):
        if project is None:
            project = body.get("project")
        if isinstance(body.get("username"), str):  # who a login or sign-up claims to be
            g.claimed_username = body["username"][:64]
    if isinstance(project, int) and not isinstance(project, bool):
        g.project_id = project


def authenticate(rpc, token):
    cache = current_app.extensions["token_cache"]
    actor = cache.get(token)
    if actor is None:
        actor = rpc.accounts.authenticate(token)
        cache.put(token, actor)
    g.actor = actor
    return actor


def _wrap(route):
    def view(**path_args):
        # werkzeug's uuid converter yields uuid.UUID; RPC carries plain JSON values.
        kwargs = {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in path_args.items()}
        basic = route.auth and route.auth_scheme == "basic"
        if basic:
            g.auth_challenge = 'Basic realm="labcloud"'
        credentials = http_input.basic_credentials() if basic else None
        token = http_input.bearer_token() if route.auth and not basic else None
        for param in route.query:
            kwargs[param.name] = http_input.QUERY_READERS[param.type](param)
        if route.has_body:
            kwargs["body"] = _read_body(route)
        if route.client:
            kwargs["client"] = {"address": request.remote_addr or ""}
        if route.token:
            kwargs["token"] = token
        _note_for_audit(kwargs)
        if not route.uses_rpc:
            result = route.view(**kwargs)
        else:
            with current_app.extensions["rpc_pool"].checkout() as rpc:
                if basic:
                    kwargs["actor"] = current_app.extensions["basic_logins"].actor(rpc, *credentials)
                elif route.auth:
                    kwargs["actor"] = authenticate(rpc, token)
                result = route.view(rpc, **kwargs)
        if isinstance(result, Response):
            return result
        if result is None:
            return Response(status=204)
        response = jsonify(result)
        response.status_code = route.status
        return response
    view.__name__ = route.endpoint
    return view
