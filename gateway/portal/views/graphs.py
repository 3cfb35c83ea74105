"""Graph images for the portal's pages: the instance page's (owner, course managers, admins)
and the admin host page's, as PNGs behind the portal's session cookie (an <img> carries no
bearer token). The metrics service draws and decides who may see them."""
from flask import request

from gateway.api.metrics import png_response
from gateway.portal.registry import page


@page("/instances/<uuid:instance_id>/graphs/<metric>.png", title="Instance graph", area="student",
      fragment=True)
def instance_graph(rpc, actor, instance_id, metric):
    return png_response(rpc.metrics.get_instance_graph(actor, {
        "instance_id": instance_id, "metric": metric, "period": request.args.get("period", "1h")}))


@page("/admin/hosts/<host_name:name>/graphs/<metric>.png", title="Host graph", area="admin",
      fragment=True)
def host_graph(rpc, actor, name, metric):
    return png_response(rpc.metrics.get_host_graph(actor, {
        "host": name, "metric": metric, "period": request.args.get("period", "1h")}))
