"""The web portal: the gateway's second face, next to the REST API, with no business logic of its
own. Its pages call the same service RPCs as the API routes and show what the services answer
(and refuse). Server-rendered Jinja templates; htmx keeps live parts (instance states, console)
fresh; Pico CSS styles them. Both come from npm at set-up (gateway/portal/vendor.py)."""
from flask import Blueprint, request

from gateway.portal import session
from gateway.portal.registry import portal
from gateway.portal.views import account, admin, courses, instances, keys  # noqa: F401  (they register)
from gateway.portal.views import volumes  # noqa: F401  (it registers)
from gateway.portal.views import network  # noqa: F401  (it registers)
from gateway.portal.views import graphs  # noqa: F401  (it registers)
from gateway.portal.views import images  # noqa: F401  (it registers)
from gateway.portal.views import alarms  # noqa: F401  (it registers)
from gateway.portal.views import schedules  # noqa: F401  (it registers)

# Pages only load what this site serves: no inline script, no CDN, no framing (clickjacking).
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                           "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def _secure_headers(response):
    if not request.path.startswith("/api/"):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.mimetype == "text/html":  # pages show private data: never from a shared cache
            response.headers.setdefault("Cache-Control", "no-store")
    return response


def install(app):
    blueprint = Blueprint("portal", __name__, template_folder="templates", static_folder="static",
                          static_url_path="/static")
    portal.install(blueprint)
    blueprint.context_processor(_template_context)
    app.register_blueprint(blueprint)
    app.after_request(session.remember_seed)
    app.after_request(_secure_headers)


# The instance tables' columns (templates/instance_table.html): mine, a course's, every instance.
INSTANCE_COLUMNS = {"MY_COLUMNS": ("name", "state", "ip", "ssh", "course", "created"),
                    "COURSE_COLUMNS": ("name", "owner", "state", "ip", "created"),
                    "ADMIN_COLUMNS": ("name", "state", "owner", "course", "host", "ip", "created")}


def _template_context():
    from flask import g
    return dict(INSTANCE_COLUMNS, actor=g.get("actor"), csrf_token=session.csrf_token,
                csrf_field=session.CSRF_FIELD, nav=portal.navigation(g.get("actor")))
