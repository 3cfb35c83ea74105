"""Every error leaves the gateway as `{"error": {"code", "message", "fields"}}`.

Only LabcloudError subclasses carry a message meant for users. Anything else (a service's
unexpected exception arrives as nameko's RemoteError with its text) is logged here and answered
with a generic 500, so internals never reach a client.
"""
import logging

from flask import g, jsonify
from nameko.exceptions import RpcTimeout, UnknownService
from werkzeug.exceptions import HTTPException

from common.errors import LabcloudError

log = logging.getLogger(__name__)


def error_response(status, code, message, fields=None, headers=None):
    body = {"error": {"code": code, "message": message, "fields": fields or {}}}
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _labcloud_error(exc):
    response = jsonify({"error": exc.to_dict()})
    response.status_code = exc.http_status
    if exc.http_status == 401:
        # RFC 6750 / 7617: tell clients the scheme (Basic on the XenServer-compatible routes)
        response.headers["WWW-Authenticate"] = g.get("auth_challenge", "Bearer")
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)  # RFC 9110: seconds
    return response


def _http_error(exc):
    # Flask's own 404/405/...: keep the status and the Allow header, answer JSON instead of HTML.
    code = (exc.name or "error").lower().replace(" ", "_")
    headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
    return error_response(exc.code or 500, code, exc.description or exc.name, headers=headers)


def _rpc_timeout(exc):
    log.warning("rpc timed out: %s", exc)
    return error_response(504, "gateway_timeout", "a backend service did not answer in time")


def _unknown_service(exc):
    # The service name is part of the public architecture, so naming it leaks nothing.
    log.warning("%s", exc)
    return error_response(503, "service_unavailable", f"{exc}: it is not running, try again later")


def _unexpected(exc):
    log.exception("unhandled error")
    return error_response(500, "internal_error", "an internal error occurred")


def register_error_handlers(app):
    app.register_error_handler(LabcloudError, _labcloud_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(RpcTimeout, _rpc_timeout)
    app.register_error_handler(UnknownService, _unknown_service)
    # Flask picks the most specific registered class along the MRO, so this only catches the rest
    # (RemoteError, MethodNotFound from a contract mismatch, bugs in the gateway).
    app.register_error_handler(Exception, _unexpected)
