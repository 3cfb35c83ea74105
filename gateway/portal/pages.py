"""The portal's page registry: one declaration per page, like the REST routes' (gateway/routes.py).

A page view is a plain function of the RPC cluster proxy, the actor (auth=True) and the URL's path
arguments; it calls the services (one RPC per piece of data it shows) and returns a response. The
wrapper does the HTTP side in a fixed order, cheapest first: the CSRF token of a POST (no RPC), the
session cookie (no cookie: to the login page, no RPC), the token (one `accounts.authenticate`, or
none when the token cache knows it), the view. What the services refuse is rendered as an error
page with the service's status: another user's instance is a 404 page, as in the API.

The registry is also what the route-walking authorisation test walks (tests/e2e/test_route_walk.py).
"""
import dataclasses
import sys
import urllib.parse
import uuid

from flask import current_app, g, redirect, render_template, request

from common.errors import LabcloudError, Unauthorized
from gateway.portal import session
from gateway.routes import authenticate

AREAS = ("public", "student", "teacher", "admin")


@dataclasses.dataclass
class Page:
    rule: str  # Flask rule, e.g. /instances/<uuid:instance_id>
    view: object
    title: str
    area: str  # who it is for (navigation and docs); the services decide who may see what
    methods: tuple = ("GET",)
    auth: bool = True
    fragment: bool = False  # a piece of a page that htmx fetches (live state), not a page
    nav: str = None  # its label in the menu, if it has one
    large_body: bool = False  # a form with a file of any size (spooled to disk by werkzeug, not held)

    @property
    def endpoint(self):
        return self.view.__name__


class PageRegistry:
    def __init__(self):
        self.pages = []

    def page(self, rule, *, title, area, methods=("GET",), auth=True, fragment=False, nav=None, large_body=False):
        assert area in AREAS, area

        def decorator(view):
            # The endpoint is the view's name: two views of one name would silently shadow each other.
            assert all(p.endpoint != view.__name__ and p.rule != rule for p in self.pages), (view.__name__, rule)
            self.pages.append(Page(rule=rule, view=view, title=title, area=area, methods=tuple(methods),
                                   auth=auth, fragment=fragment, nav=nav, large_body=large_body))
            return view
        return decorator

    def navigation(self, actor):
        """The menu: (label, path, area) of the pages for this actor's roles. Only which links to
        show: every page still asks the services, which decide."""
        if actor is None:
            areas = {"public"}
        else:
            areas = {"student"}
            if actor.get("role") == "admin" or any(p.get("role") == "manager" for p in actor.get("projects", [])):
                areas.add("teacher")
            if actor.get("role") == "admin":
                areas.add("admin")
        shown = [p for p in self.pages if p.nav and p.area in areas]
        # Students' pages, then teachers', then admins'; a user's own account last of all.
        shown.sort(key=lambda p: (p.rule == "/account", AREAS.index(p.area)))
        return [(p.nav, p.rule, p.area) for p in shown]

    def install(self, blueprint):
        for page in self.pages:
            blueprint.add_url_rule(page.rule, endpoint=page.endpoint, view_func=_wrap(page),
                                   methods=list(page.methods))


def to_login():
    """Redirect to the login page, coming back here after it (a GET only: a form is not replayed)."""
    target = request.full_path.rstrip("?") if request.method == "GET" else request.referrer or "/"
    if request.headers.get("HX-Request"):  # htmx: a whole-page redirect, not a fragment swap
        response = current_app.response_class(status=204)
        response.headers["HX-Redirect"] = "/login"
        return response
    return redirect("/login?" + urllib.parse.urlencode({"next": target}))


def error_page(exc):
    response = current_app.make_response(render_template(
        "error.html", status=exc.http_status, message=exc.message, title=f"Error {exc.http_status}"))
    response.status_code = exc.http_status
    return response


def _wrap(page):
    def view(**path_args):
        kwargs = {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in path_args.items()}
        try:
            if page.large_body and session.token() is not None:
                # Only a logged-in browser's form is read past the app's 1 MiB limit (its CSRF
                # token is in the form, so the body is parsed before it can be checked).
                request.max_content_length = sys.maxsize
            if request.method == "POST":
                session.verify_csrf()
            token = session.token() if page.auth else None
            if page.auth and token is None:
                return to_login()
            with current_app.extensions["rpc_pool"].checkout() as rpc:
                if page.auth:
                    try:
                        kwargs["actor"] = authenticate(rpc, token)
                    except Unauthorized:  # expired or revoked: log in again
                        response = to_login()
                        session.end(response)
                        return response
                return page.view(rpc, **kwargs)
        except LabcloudError as exc:
            g.audit_message = exc.message
            return error_page(exc)
    view.__name__ = page.endpoint
    return view
