"""Signing up, logging in and out, passwords: the pages anyone reaches before (or around) a session."""
import datetime as dt
import urllib.parse

from flask import current_app, redirect, render_template, request
from nameko.exceptions import UnknownService

from gateway.portal import session
from gateway.portal.forms import attempt, body_from_form, form_page
from gateway.portal.registry import page
from gateway.portal.session import CSRF_FIELD
from gateway.rpc_pool import ServiceUnavailable

ACCOUNTS = "services.accounts.schemas:"


def _safe_next(target):
    """Only a path on this site (never //evil.example or https://...): no open redirect."""
    parsed = urllib.parse.urlsplit(target or "/")
    if parsed.scheme or parsed.netloc or not parsed.path.startswith("/") or parsed.path.startswith("//"):
        return "/"
    return urllib.parse.urlunsplit(("", "", parsed.path, parsed.query, ""))


@page("/login", title="Log in", area="public", methods=("GET", "POST"), auth=False, nav="Log in")
def login(rpc):
    next_path = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("account/login.html", title="Log in", errors=None, next=next_path,
                               username=request.args.get("username", ""))
    body = {"username": request.form.get("username", ""), "password": request.form.get("password", "")}
    issued, errors = attempt(lambda: rpc.accounts.issue_token(body, {"address": request.remote_addr or ""}))
    if errors:
        return form_page("account/login.html", errors, title="Log in", username=body["username"], next=next_path)
    expires = dt.datetime.fromisoformat(issued["expires_at"])
    ttl = max(1, int((expires - dt.datetime.now(dt.timezone.utc)).total_seconds()))
    response = redirect(next_path, code=303)
    session.start(response, issued, ttl)
    return response


@page("/logout", title="Log out", area="student", methods=("POST",))
def logout(rpc, actor):
    rpc.accounts.revoke_token(session.token())
    current_app.extensions["token_cache"].forget(session.token())
    response = redirect("/login", code=303)
    session.end(response)
    return response


@page("/signup", title="Sign up", area="public", methods=("GET", "POST"), auth=False, nav="Sign up")
def signup(rpc):
    if request.method == "GET":
        return render_template("account/signup.html", title="Sign up", errors=None, form={})
    body = body_from_form(ACCOUNTS + "SignupRequest")
    user, errors = attempt(lambda: rpc.accounts.signup(body))
    if errors:
        return form_page("account/signup.html", errors, title="Sign up", form=request.form)
    return render_template("account/pending.html", title="Waiting for approval", user=user)


@page("/set-password", title="Set your password", area="public", methods=("GET", "POST"), auth=False)
def set_password(rpc):
    link_token = request.values.get("token", "")
    if request.method == "GET":
        return render_template("account/set_password.html", title="Set your password", errors=None,
                               token=link_token)
    body = {"token": link_token, "password": request.form.get("password", "")}
    user, errors = attempt(lambda: rpc.accounts.set_password(body))
    if errors:
        return form_page("account/set_password.html", errors, title="Set your password", token=link_token)
    return redirect("/login?" + urllib.parse.urlencode({"username": user["username"]}), code=303)


@page("/account", title="My account", area="student", methods=("GET", "POST"), nav="Account")
def account(rpc, actor):
    errors = None
    if request.method == "POST":
        body = body_from_form(ACCOUNTS + "ChangePasswordRequest")
        _changed, errors = attempt(lambda: rpc.accounts.change_password(actor, actor["id"], body))
        if not errors:  # every token of this user was revoked, this session's too
            response = redirect("/login?" + urllib.parse.urlencode({"username": actor["username"],
                                                                      "changed": "1"}), code=303)
            session.end(response)
            return response
    return _account_page(rpc, actor, errors)


def _account_page(rpc, actor, errors=None, notification_errors=None):
    # The password form must not depend on the notifications service: without it, the panel says so.
    try:
        kinds = rpc.metrics.get_notification_preferences(actor)
    except (ServiceUnavailable, UnknownService):
        kinds = None
    return form_page("account/account.html", errors or notification_errors, title="My account",
                     kinds=kinds, password_errors=errors, notification_errors=notification_errors)


@page("/account/notifications", title="My notifications", area="student", methods=("POST",))
def account_notifications(rpc, actor):
    """The panel's checkboxes: each kind is sent as a hidden "false" then, when ticked, "true"; the
    last value wins. The service knows the kinds and refuses what cannot be turned off."""
    body = {name: request.form.getlist(name)[-1] == "true" for name in request.form if name != CSRF_FIELD}
    _kinds, errors = attempt(lambda: rpc.metrics.set_notification_preferences(actor, body))
    if errors:
        return _account_page(rpc, actor, notification_errors=errors)
    return redirect("/account#notifications", code=303)
