"""The audit trail: every state-changing request (who, on behalf of which project, what, when,
from which address, how it ended) is published as the event `gateway.request_audited`; the
accounts service stores it and serves `GET /api/v1/audit`. Request bodies are never recorded
(they hold passwords and keys)."""
import logging
import uuid

from flask import g, request

from common.clock import utcnow
from common.schemas import dump
from services.accounts.schemas import AuditRecordSchema

log = logging.getLogger(__name__)

AUDITED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EVENT_SOURCE, EVENT_TYPE = "gateway", "request_audited"


class AuditTrail:
    """Publishes records with nameko's standalone event dispatcher (created on first use, so the
    app starts without a broker). `publish` may be replaced (tests)."""

    def __init__(self, config):
        self.config = dict(config)
        self._dispatch = None

    def publish(self, record):
        if self._dispatch is None:
            from nameko.standalone.events import event_dispatcher
            self._dispatch = event_dispatcher(self.config)
        self._dispatch(EVENT_SOURCE, EVENT_TYPE, record)

    def init_app(self, app):
        app.after_request(self._after_request)

    def _after_request(self, response):
        if request.method in AUDITED_METHODS and request.url_rule is not None:
            try:
                self.publish(dump(AuditRecordSchema, _record(response)))
            except Exception:  # the request is done either way; say loudly that its record is lost
                log.exception("audit record of %s %s could not be published", request.method, request.path)
        return response


def _record(response):
    actor = g.get("actor")
    error = (response.get_json(silent=True) or {}).get("error") if response.status_code >= 400 else None
    return {
        "id": str(uuid.uuid4()),
        "at": utcnow(),
        "user_id": actor["id"] if actor else None,
        "username": actor["username"] if actor else g.get("claimed_username"),
        "project_id": g.get("project_id"),
        "method": request.method,
        "path": request.path,
        "action": request.endpoint,
        "status": response.status_code,
        "result": "success" if response.status_code < 400 else "error",
        "address": request.remote_addr,
        # A portal page answers HTML: its refusal's message was noted while rendering it.
        "message": (error or {}).get("message") or g.get("audit_message"),
    }
