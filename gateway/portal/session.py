"""The portal's session: the accounts service's own bearer token, kept in an HttpOnly cookie (so
logging out, a password change, suspension or deletion end a portal session exactly as they end
an API token), and CSRF protection for every form.

CSRF token = HMAC-SHA256(key = the session token, or before login a random per-browser seed kept in
its own HttpOnly cookie). A forged cross-site form cannot know it: the key never leaves the
cookie jar. It needs no server-side state and no secret shared between gateway replicas.
SameSite=Lax keeps the cookies off cross-site POSTs as a second line.
"""
import hashlib
import hmac
import secrets

from flask import current_app, g, request

from common.errors import Forbidden

SESSION_COOKIE = "labcloud_session"
SEED_COOKIE = "labcloud_csrf_seed"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"  # htmx requests send it (base.html sets hx-headers)


class CsrfRefused(Forbidden):
    """Gateway-local: a form came without a valid CSRF token (never crosses RPC)."""
    code = "csrf_refused"


def token():
    return request.cookies.get(SESSION_COOKIE) or None


def _secure():
    return request.is_secure or bool(current_app.config["LABCLOUD"].get("PORTAL_SECURE_COOKIES"))


def _cookie(response, name, value, max_age):
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="Lax",
                        secure=_secure())


def start(response, issued, ttl_seconds):
    """After a login: the session cookie lives as long as the token."""
    _cookie(response, SESSION_COOKIE, issued["token"], max_age=ttl_seconds)
    response.delete_cookie(SEED_COOKIE, path="/")


def end(response):
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Lax", secure=_secure())


def _seed():
    """The pre-login CSRF key: this browser's seed cookie, or a new one set on the response."""
    seed = request.cookies.get(SEED_COOKIE) or g.get("new_csrf_seed")
    if not seed:
        seed = g.new_csrf_seed = secrets.token_urlsafe(32)
    return seed


def csrf_token():
    key = token() or _seed()
    return hmac.new(key.encode(), b"labcloud-portal-csrf", hashlib.sha256).hexdigest()


def verify_csrf():
    """Before anything else in a POST: the form's (or htmx header's) token must match."""
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    key = token() or request.cookies.get(SEED_COOKIE)
    if not key or not hmac.compare_digest(sent, csrf_token()):
        raise CsrfRefused("this form is out of date or did not come from this site: reload the page "
                          "and send it again", {CSRF_FIELD: ["missing or invalid"]})


def remember_seed(response):
    """after_request: set the seed cookie made while rendering a pre-login form."""
    seed = g.get("new_csrf_seed")
    if seed and not token():
        _cookie(response, SEED_COOKIE, seed, max_age=24 * 3600)
    return response
