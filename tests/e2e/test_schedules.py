"""Scheduled actions on the whole system as processes (the stack's metrics service runs its
schedule timer every second): a stop scheduled through the REST API stops the instance, a start
scheduled with `labcloud schedule create` starts it again, and the instance page's panel lists,
adds and deletes schedules; bad input is a 400 naming its field, others see nothing."""
import datetime as dt
import json
import time

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user, running_instances
from tests.e2e.portal import Portal, field_error
from tests.e2e.test_cli import ok, run


def in_seconds(seconds, offset_hours=0):
    zone = dt.timezone(dt.timedelta(hours=offset_hours))
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)).astimezone(zone).isoformat()


def test_schedules_through_the_api_the_cli_and_the_portal(stack, tmp_path):
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    user = approved_user(stack.url, admin, f"sched{int(time.time() * 1000) % 10**6}")
    [iid] = running_instances(user, 1, prefix="scheduled")
    request = {"instance": iid, "action": "stop", "at": in_seconds(2, offset_hours=2)}
    for field, bad in (("at", {"at": in_seconds(-60)}), ("at", {"cron": "0 8 * * *"}),
                       ("cron", {"at": None, "cron": "every day"}), ("flavor", {"action": "resize"}),
                       ("timezone", {"at": None, "cron": "0 8 * * *", "timezone": "Nowhere/Town"})):
        refused = user.call("POST", "/schedules", 400, json=dict(request, **bad)).json()
        assert list(refused["error"]["fields"]) == [field], (field, refused)
    made = user.call("POST", "/schedules", 201, json=dict(request, client_token="stop-once")).json()
    again = user.call("POST", "/schedules", 201, json=dict(request, client_token="stop-once")).json()
    assert again == made and made["state"] == "active"
    user.wait_for(f"/instances/{iid}", lambda r: r.json()["state"] == "stopped", timeout=60, interval=0.5)
    [run_] = user.wait_for(f"/schedules/{made['id']}/history",
                           lambda r: [h["outcome"] for h in r.json()] == ["ok"], timeout=30).json()
    assert run_["action"] == "stop" and run_["result"].startswith("stop:")
    assert user.call("GET", f"/schedules/{made['id']}", 200).json()["state"] == "done"
    other = approved_user(stack.url, admin, f"nosched{int(time.time() * 1000) % 10**6}")
    other.call("GET", f"/schedules/{made['id']}/history", 404)
    other.call("POST", "/schedules", 404, json=dict(request, at=in_seconds(3600)))
    assert other.call("GET", "/schedules", 200).json() == []

    home = str(tmp_path)
    ok(run(home, "login", "--url", stack.url, "--username", user.username, "--password-stdin",
           stdin=user.password + "\n"))
    started = json.loads(ok(run(home, "schedule", "create", "scheduled-0", "--action", "start",
                                "--at", in_seconds(2), "--json")))
    assert started["action"] == "start" and started["instance"] == iid
    user.wait_for(f"/instances/{iid}", lambda r: r.json()["state"] == "running", timeout=60, interval=0.5)
    history = user.wait_for(f"/schedules/{started['id']}/history", lambda r: r.json()
                            and r.json()[0]["outcome"] == "ok", timeout=30).json()
    assert ok(run(home, "schedule", "history", str(started["id"]))).count("ok") >= 1 and len(history) == 1
    nightly = json.loads(ok(run(home, "schedule", "create", "scheduled-0", "--action", "stop", "--cron",
                                "0 20 * * 1-5", "--timezone", "Europe/Paris", "--json")))
    assert nightly["cron"] == "0 20 * * 1-5" and nightly["timezone"] == "Europe/Paris"
    listed = ok(run(home, "schedule", "list", "--instance", "scheduled-0"))
    assert str(nightly["id"]) in listed and "Europe/Paris" in listed
    bad = run(home, "schedule", "create", "scheduled-0", "--action", "stop", "--cron", "0 25 * * *")
    assert bad.returncode == 1 and "cron" in bad.stderr
    assert "deleted" in ok(run(home, "schedule", "delete", str(nightly["id"])))

    portal = Portal(stack.url).login(user.username, user.password)
    _resp, page = portal.get(f"/instances/{iid}")
    assert page.by_id("schedules") is not None
    _resp, panel = portal.get(f"/instances/{iid}/schedules")
    row = panel.find("tr", **{"data-schedule": str(made["id"])})
    assert row is not None and "done" in row.text() and "ok" in row.text()
    _resp, refused = portal.submit(panel, f"/instances/{iid}/schedules/new",
                                   {"action": "stop", "cron": "0 8 * *"}, expect=400)
    assert "five cron fields" in field_error(refused, "schedule-cron")
    portal.submit(panel, f"/instances/{iid}/schedules/new",
                  {"action": "stop", "cron": "0 20 * * *", "timezone": "Europe/Paris", "name": "evening"}, expect=303)
    [evening] = [s for s in user.call("GET", "/schedules", 200).json() if s["name"] == "evening"]
    _resp, panel = portal.get(f"/instances/{iid}/schedules")
    assert panel.find("tr", **{"data-schedule": str(evening["id"])}) is not None
    portal.submit(panel, f"/schedules/{evening['id']}/delete", expect=303)
    user.call("GET", f"/schedules/{evening['id']}", 404)
    Portal(stack.url).login(other.username, other.password).get(f"/instances/{iid}/schedules", expect=404)

    # An admin's schedule on the user's instance: the user sees it (API and panel) without Delete,
    # and cannot delete it; the admin's panel has the button.
    imposed = admin.call("POST", "/schedules", 201, json={"instance": iid, "action": "stop",
                                                           "cron": "0 22 * * *", "name": "lights-out"}).json()
    assert [s["id"] for s in user.call("GET", f"/schedules?instance={iid}", 200).json()] == [
        made["id"], started["id"], imposed["id"]]
    _resp, panel = portal.get(f"/instances/{iid}/schedules")
    row = panel.find("tr", **{"data-schedule": str(imposed["id"])})
    assert "set by someone else" in row.text() and row.find("form") is None
    assert panel.find("tr", **{"data-schedule": str(made["id"])}).find("form") is not None
    user.call("DELETE", f"/schedules/{imposed['id']}", 404)
    _resp, admin_panel = Portal(stack.url).login("admin", ADMIN_PASSWORD).get(f"/instances/{iid}/schedules")
    assert admin_panel.find("tr", **{"data-schedule": str(imposed["id"])}).find("form") is not None
