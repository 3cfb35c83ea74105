"""XenServer's /rrd_updates and /vm_rrd on the host agent's own HTTP port, for the VMs this host
runs (defined here, running or stopped) and the host itself (host=true), with HTTP Basic auth
from the configuration.

The agent answers from rrd files of its own (common/rrd, the layout the metrics service keeps,
with the same archives), fed by the samples of its `domain_stats` timer: a VM's file goes when
the VM is no longer defined here (migrated or deleted); the metrics service keeps everything
longer, as XenServer's pool master does for VMs that left a host. Off unless METRICS_HTTP_PORT is
set. Config: METRICS_HTTP_PORT, METRICS_HTTP_ADDRESS (127.0.0.1), METRICS_HTTP_USER,
METRICS_HTTP_PASSWORD (required when the port is set), METRICS_HTTP_DIR (its files).
"""
import base64
import binascii
import hmac
import json
import os

from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Request, Response

from common.errors import InvalidInput, NotFound
from common.rrd.store import MetricsStore
from common.rrd.threaded import Metrics
from common.schemas import load
from common.wsgi_listener import WsgiListener
from services.metrics.schemas import RrdUpdatesRequest, VmRrdRequest

DEFAULT_ADDRESS = "127.0.0.1"


def _error(status, code, message, fields=None, headers=None):
    body = json.dumps({"error": {"code": code, "message": message, "fields": fields or {}}})
    return Response(body, status=status, content_type="application/json", headers=headers or {})


def _credentials(request):
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return username, password


def _query(request, names, booleans=()):
    """The query string as the request schema reads it (booleans as true/false)."""
    values = {}
    for name in names:
        value = request.args.get(name)
        if value is None:
            continue
        values[name] = {"true": True, "false": False}.get(value.lower(), value) if name in booleans else value
    return values


def make_app(metrics, username, password, host_name):
    def authorised(request):
        given = _credentials(request)
        return given is not None and hmac.compare_digest(given[0].encode(), username.encode()) \
            and hmac.compare_digest(given[1].encode(), password.encode())

    def rrd_updates(request):
        query = load(RrdUpdatesRequest, _query(
            request, ("start", "interval", "cf", "host", "vm_uuid", "json"), ("host", "json")))
        answer = metrics.rrd_updates(start=query["start"], vm_uuid=query["vm_uuid"],
                                     interval=query["interval"], cf=query["cf"],
                                     host=query["host"], as_json=query["json"])
        return Response(answer, content_type="application/json" if query["json"] else "text/xml")

    def vm_rrd(request):
        instance_id = load(VmRrdRequest, _query(request, ("uuid",)))["uuid"]
        return Response(metrics.vm_rrd(instance_id), content_type="text/xml")

    routes = {"/rrd_updates": rrd_updates, "/vm_rrd": vm_rrd}

    @Request.application
    def app(request):
        view = routes.get(request.path)
        if view is None or request.method != "GET":
            return _error(404, "not_found", f"no route {request.path}")
        if not authorised(request):
            return _error(401, "unauthorized", f"host {host_name}: wrong or missing credentials",
                          headers={"WWW-Authenticate": f'Basic realm="{host_name}"'})
        try:
            return view(request)
        except InvalidInput as exc:
            return _error(400, "invalid_input", str(exc), exc.fields)
        except NotFound as exc:
            return _error(404, "not_found", str(exc))
    return app


class MetricsHttp(DependencyProvider):
    """The agent's own rrd files and the HTTP server in front of them. Workers call `record`."""

    def setup(self):
        config = self.container.config
        self.port = int(config.get("METRICS_HTTP_PORT") or 0)
        self.metrics = None
        self.listener = WsgiListener()
        if not self.port:
            return
        user, password = config.get("METRICS_HTTP_USER"), config.get("METRICS_HTTP_PASSWORD")
        if not user or not password:
            raise ValueError("METRICS_HTTP_PORT is set: METRICS_HTTP_USER and METRICS_HTTP_PASSWORD are required")
        host_name = getattr(self.container.service_cls, "host_name", None) or config.get("HOST_NAME")
        directory = config.get("METRICS_HTTP_DIR") or os.path.join("var", "agent-metrics", host_name)
        step = max(1, int(float(config.get("STATS_INTERVAL", 5))))
        self.metrics = Metrics(MetricsStore(directory, step))
        self.address = config.get("METRICS_HTTP_ADDRESS") or DEFAULT_ADDRESS
        self.app = make_app(self.metrics, str(user), str(password), host_name)

    def start(self):
        if self.metrics is not None:
            self.listener.serve(self.container, self.address, self.port, self.app, "metrics HTTP")

    def stop(self):
        self.listener.stop()

    kill = stop

    def record(self, at, samples, host, host_sample):
        if self.metrics is not None:
            self.metrics.record(at, samples, host, host_sample)

    def get_dependency(self, worker_ctx):
        return self
