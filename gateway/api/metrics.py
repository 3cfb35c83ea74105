"""Metrics in XenServer's shapes (/rrd_updates, /vm_rrd, with HTTP Basic auth: the clients
written for XenServer know no bearer tokens). The metrics service decides who reads what."""
from flask import Response

from gateway.api.registry import route
from gateway.routes import QueryParam

XML = "text/xml"


@route("GET", "/rrd_updates", tag="metrics", auth_scheme="basic",
       summary="XenServer's rrd_updates: every data source of the VMs one may see (admins: all, and "
               "the hosts with host=true) since start, rows newest first; XML, or JSON with json=true",
       response={"type": "string"}, content_type=XML,
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
       response={"type": "string"}, content_type=XML,
       query=(QueryParam("uuid", "string", None, "the VM (required)", max_length=64),))
def vm_rrd(rpc, actor, uuid):
    request = {} if uuid is None else {"uuid": uuid}
    return Response(rpc.metrics.get_vm_rrd(actor, request), content_type=XML)
