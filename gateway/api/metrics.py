"""Metrics: XenServer's /rrd_updates and /vm_rrd (HTTP Basic auth: the clients written for
XenServer know no bearer tokens) and PNG graphs. The metrics service decides who reads what."""
import base64

from flask import Response

from gateway.api.registry import route
from gateway.routes import QueryParam

XML = "text/xml"


@route("GET", "/rrd_updates", tag="metrics", auth_scheme="basic",
       summary="XenServer's rrd_updates: every data source of the VMs one may see (admins: all, and "
               "the hosts with host=true) since start, rows newest first; XML, or JSON with json=true",
       response={"type": "string"}, content_type=(XML, "application/json"), errors=(404,),
       query=(QueryParam("start", "integer", None, "unix time of the oldest row wanted (required)",
                         minimum=0),
              QueryParam("interval", "integer", None, "seconds per row: picks the archive",
                         minimum=1, maximum=86400),
              QueryParam("cf", "string", None, "AVERAGE, MIN or MAX (default: all three)",
                         max_length=7),
              QueryParam("host", "boolean", False, "the hosts too (administrators)"),
              QueryParam("vm_uuid", "string", None, "one VM", max_length=64),
              QueryParam("json", "boolean", False, "JSON instead of XML")))
def rrd_updates(rpc, actor, start, interval, cf, host, vm_uuid, json):
    request = {"start": start, "interval": interval, "cf": cf, "host": host, "vm_uuid": vm_uuid,
               "json": json}
    answer = rpc.metrics.get_rrd_updates(actor, {k: v for k, v in request.items() if v is not None})
    return Response(answer, content_type="application/json" if json else XML)


@route("GET", "/vm_rrd", tag="metrics", auth_scheme="basic",
       summary="XenServer's vm_rrd: a VM's whole round-robin database (rrdtool dump XML)",
       response={"type": "string"}, content_type=XML, errors=(404,),
       query=(QueryParam("uuid", "string", None, "the VM (required)", max_length=64),))
def vm_rrd(rpc, actor, uuid):
    request = {} if uuid is None else {"uuid": uuid}
    return Response(rpc.metrics.get_vm_rrd(actor, request), content_type=XML)


def png_response(answer):
    # RPC carries JSON: the PNG comes base64-encoded and leaves as bytes. Cached by the metrics
    # service; browsers may keep it for as long (a minute).
    return Response(base64.b64decode(answer["png_base64"]), content_type="image/png",
                    headers={"Cache-Control": "private, max-age=60"})


GRAPH_PERIOD = QueryParam("period", "string", "1h", "1h, 1d, 1w or 1m", max_length=8)
PNG = {"type": "string", "format": "binary"}


@route("GET", "/api/v1/instances/<uuid:instance_id>/graphs/<metric>.png", tag="instances",
       summary="A graph of the instance's cpu, memory, disk or network over the last period (PNG)",
       response=PNG, content_type="image/png", query=(GRAPH_PERIOD,))
def get_instance_graph(rpc, actor, instance_id, metric, period):
    return png_response(rpc.metrics.get_instance_graph(actor, {"instance_id": instance_id, "metric": metric,
                                                       "period": period}))


@route("GET", "/api/v1/hosts/<host_name:name>/graphs/<metric>.png", tag="admin",
       summary="A graph of a host's cpu, memory, network or load over the last period (PNG; admins)",
       response=PNG, content_type="image/png", query=(GRAPH_PERIOD,))
def get_host_graph(rpc, actor, name, metric, period):
    return png_response(rpc.metrics.get_host_graph(actor, {"host": name, "metric": metric, "period": period}))
