"""Alarms on the whole system as processes: the host agent's own samples (test:///default) reach
the metrics service, an alarm made through the REST API goes to ALARM, its mail lands in the
stack's Maildir, and the `labcloud alarm` commands list, show the history and delete it."""
import json
import time

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user, running_instances
from tests.e2e.portal import Portal, field_error
from tests.e2e.test_cli import ok, run
from tests.e2e.test_notifications import body, mails_to


def test_an_alarm_through_the_api_and_the_cli(stack, tmp_path):
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    user = approved_user(stack.url, admin, f"alarm{int(time.time() * 1000) % 10**6}")
    [iid] = running_instances(user, 1, prefix="alarmed")
    request = {"instance": iid, "metric": "memory_mib", "statistic": "max", "comparison": "GreaterThanThreshold",
               "threshold": 1, "period": 5, "evaluation_periods": 1, "missing_data": "missing"}
    refused = user.call("POST", "/alarms", 400, json=dict(request, statistic="median")).json()
    assert list(refused["error"]["fields"]) == ["statistic"]
    refused = user.call("POST", "/alarms", 400, json=dict(request, period=7)).json()
    assert list(refused["error"]["fields"]) == ["period"]
    alarm = user.call("POST", "/alarms", 201, json=request).json()
    assert alarm["state"] == "INSUFFICIENT_DATA" and alarm["instance"] == iid
    user.wait_for(f"/alarms/{alarm['id']}", lambda r: r.json()["state"] == "ALARM", timeout=60, interval=0.5)
    [mail] = [m for m in mails_to(stack, f"{user.username}@lab.example", 2)
              if m["Subject"].endswith(": ALARM")]
    text = " ".join(body(mail).split())
    assert f"On: instance {iid}" in text and "Metric: memory_mib (max)" in text
    # Another user sees nothing of it.
    other = approved_user(stack.url, admin, f"other{int(time.time() * 1000) % 10**6}")
    other.call("GET", f"/alarms/{alarm['id']}/history", 404)
    assert other.call("GET", "/alarms", 200).json() == []

    # The instance page's panel (loaded by htmx): the alarm, its state and its last change; a form.
    portal = Portal(stack.url).login(user.username, user.password)
    _resp, page = portal.get(f"/instances/{iid}")
    assert page.by_id("alarms") is not None
    _resp, panel = portal.get(f"/instances/{iid}/alarms")
    row = panel.find("tr", **{"data-alarm": str(alarm["id"])})
    assert row is not None and "ALARM" in row.text() and "INSUFFICIENT_DATA" in row.text()
    _resp, refused = portal.submit(panel, f"/instances/{iid}/alarms/new",
                                   {"metric": "cpu_percent", "comparison": "LessThanThreshold",
                                    "threshold": "5", "period": "7"}, expect=400)
    assert "multiple of 5" in field_error(refused, "period")
    portal.submit(panel, f"/instances/{iid}/alarms/new", {"metric": "cpu_percent", "comparison": "LessThanThreshold",
                                                          "threshold": "5", "name": "idle"}, expect=303)
    [idle] = [a for a in user.call("GET", "/alarms", 200).json() if a["name"] == "idle"]
    _resp, panel = portal.get(f"/instances/{iid}/alarms")
    portal.submit(panel, f"/alarms/{idle['id']}/delete", expect=303)
    other_portal = Portal(stack.url).login(other.username, other.password)
    other_portal.get(f"/instances/{iid}/alarms", expect=404)

    home = str(tmp_path)
    ok(run(home, "login", "--url", stack.url, "--username", user.username, "--password-stdin",
           stdin=user.password + "\n"))
    listed = ok(run(home, "alarm", "list"))
    assert str(alarm["id"]) in listed and "ALARM" in listed
    history = json.loads(ok(run(home, "alarm", "history", str(alarm["id"]), "--json")))
    assert history[0]["new_state"] == "ALARM"
    made = json.loads(ok(run(home, "alarm", "create", "--instance", "alarmed-0", "--metric", "cpu_percent",
                             "--comparison", ">", "--threshold", "95", "--period", "10", "--json")))
    assert made["comparison"] == "GreaterThanThreshold" and made["instance"] == iid
    bad = run(home, "alarm", "create", "--instance", "alarmed-0", "--metric", "loadavg", "--comparison", ">",
              "--threshold", "1")
    assert bad.returncode == 1 and "metric" in bad.stderr
    assert "deleted" in ok(run(home, "alarm", "delete", str(made["id"])))
    assert [a["id"] for a in user.call("GET", "/alarms", 200).json()] == [alarm["id"]]
