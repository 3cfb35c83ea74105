"""Service endpoints that need no RPC."""
from flask import Response, current_app

from gateway import schemas as own
from gateway.api.registry import route


@route("GET", "/api/v1/openapi.json", tag="meta", summary="This OpenAPI document", auth=False,
       uses_rpc=False, response={"type": "object"})
def openapi():
    return current_app.extensions["openapi"]


@route("GET", "/healthz", tag="meta", summary="Liveness of the gateway process", auth=False,
       uses_rpc=False, response=own.HealthSchema)
def healthz():
    return {"status": "ok"}


@route("GET", "/metrics", tag="meta", summary="Prometheus metrics", auth=False, uses_rpc=False,
       response={"type": "string"}, content_type="text/plain")
def metrics():
    exporter = current_app.extensions["prometheus"]
    return Response(exporter.render(), content_type=exporter.content_type)
