"""Mail on the whole system as `make run` starts it: the stack's local SMTP sink (aiosmtpd, a
Maildir under the data dir) receives what the metrics service sends; a user's notification
preferences through the REST API, the installed `labcloud` command and the portal's account page."""
import json
import mailbox
import os
import time
import uuid

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user
from tests.e2e.portal import Portal, field_error
from tests.e2e.test_cli import ok, run


def mails_to(stack, address, count, timeout=30):
    """The mails the stack's sink holds for `address`, once there are `count` of them."""
    maildir = os.path.join(stack.data_dir, "mail")
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in mailbox.Maildir(maildir, create=False) if m["To"] == address] \
            if os.path.isdir(os.path.join(maildir, "new")) else []
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def body(mail):
    return mail.get_payload(decode=True).decode()


def test_approval_and_password_reset_arrive_once_in_the_local_maildir(stack):
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    user = approved_user(stack.url, admin, f"mail{uuid.uuid4().hex[:6]}")
    address = f"{user.username}@lab.example"
    [approved] = mails_to(stack, address, 1)
    assert approved["Subject"] == "Your labcloud account is approved"
    link = admin.call("POST", f"/users/{user.user_id}/password-reset", 200).json()["password_link"]
    mails = mails_to(stack, address, 2)
    [reset] = [m for m in mails if m["Subject"] == "labcloud: your password was reset"]
    assert link in body(reset)
    time.sleep(1)
    assert len(mails_to(stack, address, 3, timeout=0)) == 2  # each event once


def test_preferences_through_the_api_the_cli_and_the_portal(stack, tmp_path):
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    user = approved_user(stack.url, admin, f"pref{uuid.uuid4().hex[:6]}")
    kinds = user.call("GET", "/users/me/notifications", 200).json()
    assert {k["kind"]: (k["enabled"], k["can_disable"]) for k in kinds} == {
        "account": (True, True), "security": (True, False), "instance": (True, True), "alarm": (True, True)}
    refused = user.call("PUT", "/users/me/notifications", 400, json={"security": False}).json()
    assert list(refused["error"]["fields"]) == ["security"]

    home = str(tmp_path)
    ok(run(home, "login", "--url", stack.url, "--username", user.username, "--password-stdin",
           stdin=user.password + "\n"))
    assert "instance mail is off" in ok(run(home, "notifications", "disable", "instance"))
    listed = json.loads(ok(run(home, "notifications", "list", "--json")))
    assert {k["kind"]: k["enabled"] for k in listed} == {"account": True, "security": True, "instance": False,
                                                         "alarm": True}
    cannot = run(home, "notifications", "disable", "security")
    assert cannot.returncode == 1 and "security" in cannot.stderr and "cannot be turned off" in cannot.stderr
    table = ok(run(home, "notifications", "list"))
    assert "instance" in table and "off" in table and "always on" in table
    # Another user's preferences are not touched by this user's choices.
    assert all(k["enabled"] for k in admin.call("GET", "/users/me/notifications", 200).json())

    portal = Portal(stack.url).login(user.username, user.password)
    _resp, page = portal.get("/account")
    assert page.by_id("notify-instance").get("checked") is None
    assert page.by_id("notify-security").get("disabled") is not None
    portal.submit(page, "/account/notifications", {"account": "true", "instance": "true"}, expect=303)
    _resp, page = portal.get("/account")
    assert page.by_id("notify-instance").get("checked") is not None
    # A forged form turning security mail off is refused on the panel, naming the field.
    _resp, page = portal.submit(page, "/account/notifications", {"security": "false"}, expect=400)
    assert "cannot be turned off" in field_error(page, "notify-security")
    assert user.call("GET", "/users/me/notifications", 200).json()[1] == {
        "kind": "security", "enabled": True, "can_disable": False,
        "description": "one-time links to set your password (new account, reset); cannot be turned off"}
