"""The Flask app factory."""
from flask import Flask

from gateway.api import api
from gateway.audit import AuditTrail
from gateway.converters import CONVERTERS
from gateway.errors import register_error_handlers
from gateway.openapi import build_spec
from gateway import portal
from gateway.rpc_pool import RpcPool
from gateway.telemetry import RequestMetrics
from gateway.basic_auth import BasicLogins
from gateway.token_cache import DEFAULT_SECONDS, TokenCache

# The largest legitimate bodies are a class list (CSV) and an instance's user_data (16 KiB);
# refuse megabytes up front (413).
MAX_BODY_BYTES = 1024 * 1024


def create_app(config, rpc_pool=None, audit=None):
    """config: the gateway's config dict (AMQP_URI, RPC_POOL_SIZE, RPC_TIMEOUT,
    TOKEN_CACHE_SECONDS, ...). rpc_pool: anything with a `checkout()` context manager yielding a
    cluster proxy; by default an RpcPool on config's AMQP_URI (started lazily, so creating the app
    needs no broker). audit: an AuditTrail (or anything with `init_app` and `publish`)."""
    app = Flask(__name__, static_folder=None)  # the portal's blueprint serves /static
    app.json.sort_keys = False  # keep the services' field order
    app.config["LABCLOUD"] = dict(config)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.url_map.converters.update(CONVERTERS)

    # Resolving imports every service schema now: a missing one fails at startup, not mid-request.
    routes = api.resolved()
    api.install(app, routes)
    portal.install(app)
    register_error_handlers(app)

    app.extensions["rpc_pool"] = rpc_pool if rpc_pool is not None else RpcPool(config)
    app.extensions["token_cache"] = TokenCache(config.get("TOKEN_CACHE_SECONDS", DEFAULT_SECONDS))
    app.extensions["basic_logins"] = BasicLogins()
    app.extensions["openapi"] = build_spec(routes)
    prometheus = RequestMetrics()
    prometheus.init_app(app)
    app.extensions["prometheus"] = prometheus
    audit = audit if audit is not None else AuditTrail(config)
    audit.init_app(app)
    app.extensions["audit"] = audit
    return app
