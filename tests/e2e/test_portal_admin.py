"""The admins' portal pages (gateway/portal/views/admin.py) and GET /api/v1/hosts, over HTTP against
the running system, as a browser without JavaScript uses them: log in through the login form, send
every form with the CSRF token of the page it is on, read the HTML. The services decide who may do
what; these tests check that the pages show what they answer and refuse."""
import random
import re
import time

import pytest

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user, tiny_image
from tests.e2e.portal import Portal, unique

pytestmark = pytest.mark.e2e

ADMIN_PAGES = {"/admin/signups", "/admin/users", "/admin/courses", "/admin/images", "/admin/hosts",
               "/admin/hosts/<host_name:name>", "/admin/subnets", "/admin/subnets/<id:subnet_id>",
               "/admin/subnets/<id:subnet_id>/macs", "/admin/audit", "/admin/instances", "/admin/fragments/instances",
               "/admin/floating-pools", "/admin/hosts/<host_name:name>/graphs/<metric>.png",
               "/admin/hosts/<host_name:name>/alarms"}
TOKEN_CACHE_BOUND = 10  # seconds: a revoked token stops working on every gateway within it (docs)


def see_other(resp, path):
    assert resp.status_code == 303, resp.text[:3000]
    assert resp.headers["Location"] == path


def eventually(check, timeout=20, interval=0.25, what="the condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


# ----- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def admin(stack):
    api = Api(stack.url).login("admin", ADMIN_PASSWORD)
    api.user_id = next(u["id"] for u in api.call("GET", "/users", 200).json() if u["username"] == "admin")
    return api


@pytest.fixture(scope="module")
def admin_portal(stack, admin):
    return Portal(stack.url).login("admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def student(stack, admin):
    return approved_user(stack.url, admin, unique("stu"))


def sign_up(stack):
    name = unique("new")
    made = Api(stack.url).call("POST", "/users", 201, json={
        "username": name, "email": f"{name}@lab.example", "password": "a good passphrase"}).json()
    return made["id"], name


# ----- REST: the hosts --------------------------------------------------------------------------

def test_the_hosts_route_is_for_admins(stack, admin, student):
    hosts = admin.call("GET", "/hosts", 200).json()
    names = {h["name"] for h in hosts}
    assert set(stack.hosts) <= names
    host = next(h for h in hosts if h["name"] == stack.hosts[0])
    assert host["vcpus"] > 0 and host["memory_mib"] > 0 and host["state"] and host["last_heartbeat"]
    assert 0 <= host["used_vcpus"] and 0 <= host["used_memory_mib"]
    refused = student.call("GET", "/hosts")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden", refused.text
    assert Api(stack.url).call("GET", "/hosts").status_code == 401


# ----- sign-ups ---------------------------------------------------------------------------------

def test_a_signup_is_approved_into_a_course_and_the_request_is_audited(stack, admin, admin_portal):
    course = admin.call("POST", "/projects", 201, json={"name": unique("adm-")}).json()
    user_id, username = sign_up(stack)
    _resp, doc = admin_portal.get("/admin/signups")
    row = doc.find("tr", data_user=username)
    assert row is not None, "the sign-up is not listed"
    approve = row.find("form", action=f"/admin/users/{user_id}/approve")
    select = approve.find("select", name="project")
    assert select.get("id") == f"approve-{user_id}-project"
    assert doc.find("label", **{"for": select.get("id")}) is not None
    assert str(course["id"]) in {o.get("value") for o in select.find_all("option")}

    resp, _doc = admin_portal.submit(doc, f"/admin/users/{user_id}/approve", {"project": str(course["id"])})
    see_other(resp, "/admin/signups")
    _resp, doc = admin_portal.get("/admin/signups")
    assert doc.find("tr", data_user=username) is None

    # The new user logs in through the portal, and is a member of the course.
    Portal(stack.url).login(username, "a good passphrase")
    members = admin.call("GET", f"/projects/{course['id']}/members", 200).json()
    assert {(m["user_id"], m["role"]) for m in members} == {(user_id, "member")}

    # The audit page lists the portal's approve request (records arrive as events: wait for it).
    path = f"/admin/users/{user_id}/approve"

    def audited():
        _resp, page = admin_portal.get(f"/admin/audit?user={admin.user_id}")
        return page.find("tr", data_path=path)
    row = eventually(audited, what="the approve request in the audit log")
    assert "POST" in row.text() and "admin" in row.text() and "303" in row.text()
    _resp, page = admin_portal.get(f"/admin/audit?user={user_id}")  # filtered: the user did not approve
    assert page.find("tr", data_path=path) is None


def test_a_signup_is_rejected_with_a_reason(stack, admin, admin_portal):
    user_id, username = sign_up(stack)
    _resp, doc = admin_portal.get("/admin/signups")
    action = f"/admin/users/{user_id}/reject"

    resp, page = admin_portal.submit(doc, action, {"reason": ""})  # the reason is required
    assert resp.status_code == 400
    field = page.find("input", id=f"reject-{user_id}-reason")
    assert field.get("aria-invalid") == "true" and field.get("aria-describedby") == f"reject-{user_id}-reason-error"
    assert page.find("small", id=f"reject-{user_id}-reason-error") is not None
    assert admin.call("GET", f"/users/{user_id}", 200).json()["status"] == "pending"

    resp, _page = admin_portal.submit(page, action, {"reason": "not a student of this school"})
    see_other(resp, "/admin/signups")
    user = admin.call("GET", f"/users/{user_id}", 200).json()
    assert user["status"] == "rejected" and user["reason"] == "not a student of this school"
    _resp, doc = admin_portal.get("/admin/signups")
    assert doc.find("tr", data_user=username) is None
    resp, _page = Portal(stack.url).try_login(username, "a good passphrase")
    assert resp.status_code not in (302, 303)  # no session for a rejected sign-up


# ----- users ------------------------------------------------------------------------------------

def test_suspend_ends_the_portal_session_and_enable_lets_them_back(stack, admin, admin_portal):
    user = approved_user(stack.url, admin, unique("sus"))
    theirs = Portal(stack.url)
    theirs.login(user.username, user.password)
    theirs.get("/")

    _resp, doc = admin_portal.get("/admin/users")
    assert doc.find("tr", data_user=user.username).get("data-status") == "active"
    resp, _doc = admin_portal.submit(doc, f"/admin/users/{user.user_id}/suspend", {"reason": "exam week"})
    see_other(resp, "/admin/users")
    _resp, doc = admin_portal.get("/admin/users")
    row = doc.find("tr", data_user=user.username)
    assert row.get("data-status") == "suspended" and "exam week" in row.text()

    # Their portal session stops working (within the gateway's token cache bound): to the login page.
    started = time.monotonic()

    def sent_to_login():
        resp = theirs.http.get(stack.url + "/", timeout=30, allow_redirects=False)
        return resp.status_code in (302, 303) and resp.headers["Location"].startswith("/login")
    eventually(sent_to_login, timeout=TOKEN_CACHE_BOUND + 5, what="the suspended user's session to end")
    assert time.monotonic() - started <= TOKEN_CACHE_BOUND + 2
    resp, _page = Portal(stack.url).try_login(user.username, user.password)
    assert resp.status_code not in (302, 303)

    resp, _doc = admin_portal.submit(doc, f"/admin/users/{user.user_id}/enable")
    see_other(resp, "/admin/users")
    _resp, doc = admin_portal.get("/admin/users")
    assert doc.find("tr", data_user=user.username).get("data-status") == "active"
    theirs.login(user.username, user.password)
    theirs.get("/")


def test_users_are_created_imported_and_deleted_with_a_transfer(stack, admin, admin_portal):
    course = admin.call("POST", "/projects", 201, json={"name": unique("imp-")}).json()
    _resp, doc = admin_portal.get("/admin/users")
    name = unique("made")
    resp, page = admin_portal.submit(doc, "/admin/users", {
        "username": name, "email": f"{name}@lab.example", "full_name": "Made Here", "project": str(course["id"]),
        "role": "member"}, expect=200)
    link = page.find("code", id="password-link")
    assert link is not None and "/set-password?token=" in link.text()
    assert page.find("tr", data_user=name).get("data-status") == "active"

    resp, page = admin_portal.submit(page, "/admin/users", {"username": name, "email": f"x{name}@lab.example"})
    assert resp.status_code == 409 and page.find("p", id="form-error") is not None
    assert page.find("input", id="create-email").get("value") == f"x{name}@lab.example"  # kept to correct

    rows = [unique("csv") for _ in range(2)]
    text = "username,email,full_name,course\n" + "".join(f"{n},{n}@lab.example,Row {n},\n" for n in rows)
    resp, page = admin_portal.submit(page, "/admin/users/import", {"project": str(course["id"])},
                                     files={"csv_file": ("class.csv", text.encode(), "text/csv")}, expect=200)
    report = page.find("article", id="import-report")
    assert report is not None and "2 created" in report.text()
    assert all(page.find("tr", data_user=n) is not None for n in rows)
    members = {m["username"] for m in admin.call("GET", f"/projects/{course['id']}/members", 200).json()}
    assert set(rows) | {name} <= members

    bad = "username,email,full_name,course\nBad Name,bad@lab.example,Bad,\nfine1,not-an-address,Fine,\n"
    resp, page = admin_portal.submit(page, "/admin/users/import", {"csv": bad, "project": str(course["id"])})
    assert resp.status_code == 400
    assert page.find("textarea", id="import-csv").get("aria-invalid") == "true"
    assert page.find("textarea", id="import-csv").text() == " ".join(bad.split())  # kept to correct
    message = page.find("small", id="import-csv-error")
    assert "line 2: username" in message.text() and "line 3: email" in message.text()
    assert message.find_all("br")  # one bad row a line

    heir = approved_user(stack.url, admin, unique("heir"))
    leaver = approved_user(stack.url, admin, unique("gone"))
    _resp, doc = admin_portal.get("/admin/users")
    form = doc.find("form", action=f"/admin/users/{leaver.user_id}/delete")
    assert form.get("data-confirm")  # asks before it posts
    options = {o.get("value") for o in form.find("select", name="transfer_to").find_all("option")}
    assert str(heir.user_id) in options and str(leaver.user_id) not in options
    resp, _doc = admin_portal.submit(doc, f"/admin/users/{leaver.user_id}/delete", {"transfer_to": str(heir.user_id)})
    see_other(resp, "/admin/users")
    assert admin.call("GET", f"/users/{leaver.user_id}", 200).json()["status"] == "deleted"
    assert admin.call("GET", f"/keys/{leaver.key}", 200).json()["user_id"] == heir.user_id  # handed over


# ----- courses and quotas -----------------------------------------------------------------------

def test_a_course_is_created_and_a_bad_quota_shows_its_error_next_to_the_field(stack, admin, admin_portal, student):
    _resp, doc = admin_portal.get("/admin/courses")
    name = unique("crs-")
    managers = doc.find("select", name="managers")
    assert managers.get("multiple") is not None
    resp, _doc = admin_portal.submit(doc, "/admin/courses", {"name": name, "description": "made in the portal",
                                                             "managers": [str(student.user_id)]})
    see_other(resp, "/admin/courses")
    course = next(p for p in admin.call("GET", "/projects", 200).json() if p["name"] == name)
    members = admin.call("GET", f"/projects/{course['id']}/members", 200).json()
    assert [(m["user_id"], m["role"]) for m in members] == [(student.user_id, "manager")]

    _resp, doc = admin_portal.get("/admin/courses")
    row = doc.find("tr", data_course=name)
    assert row.find("a", href=f"/courses/{course['id']}") is not None
    other = next(p for p in admin.call("GET", "/projects", 200).json() if p["id"] != course["id"])
    action = f"/admin/courses/{course['id']}/quota"
    form = doc.find("form", action=action)
    values = {i.get("name"): i.get("value") for i in form.find_all("input") if i.get("name") != "csrf_token"}
    assert set(values) == {"instances", "vcpus", "memory_mib", "volume_gib", "floating_ips", "volumes"}

    resp, page = admin_portal.submit(doc, action, dict(values, instances="lots"))
    assert resp.status_code == 400
    prefix = f"quota-{course['id']}-"
    field = page.find("input", id=prefix + "instances")
    assert field.get("aria-invalid") == "true" and field.get("value") == "lots"
    assert page.find("small", id=prefix + "instances-error") is not None
    assert page.find("input", id=prefix + "vcpus").get("aria-invalid") is None
    assert page.find("input", id=f"quota-{other['id']}-instances").get("aria-invalid") is None
    assert page.find("p", id="form-error") is not None
    quota_before = admin.call("GET", f"/projects/{course['id']}/quota", 200).json()

    resp, _page = admin_portal.submit(page, action, dict(values, instances="3", vcpus=""))
    see_other(resp, "/admin/courses")
    quota = admin.call("GET", f"/projects/{course['id']}/quota", 200).json()
    assert quota["instances"] == 3 and quota["vcpus"] is None  # empty: unlimited
    assert quota["memory_mib"] == quota_before["memory_mib"]


# ----- images, hosts, every instance ------------------------------------------------------------

def test_images_hosts_and_every_instance(stack, admin, admin_portal, student):
    _resp, doc = admin_portal.get("/admin/images")
    for image in admin.call("GET", "/images", 200).json():
        assert doc.find("tr", data_image=image["name"]) is not None
    name = unique("img-")
    resp, page = admin_portal.submit(doc, "/admin/images", {"name": name, "source_path": "/nonexistent/disk.qcow2",
                                                           "format": "qcow2"})
    assert resp.status_code == 400 and page.find("p", id="form-error") is not None
    assert page.find("input", id="name").get("value") == name  # the form keeps what was sent
    resp, page = admin_portal.submit(page, "/admin/images", {"name": "Not Valid", "source_path": "x"})
    assert resp.status_code == 400 and page.find("input", id="name").get("aria-invalid") == "true"

    def registration_listed():
        _resp, images = admin_portal.get("/admin/images")
        return [r for r in images.find("table", id="registrations").find_all("tr") if "this portal" in r.text()]
    eventually(registration_listed, what="the image registration in the audit log")

    _resp, doc = admin_portal.get("/admin/hosts")
    row = doc.find("tr", data_host=stack.hosts[0])
    assert row is not None and re.search(r"\d+ / \d+", row.text())

    flavor = min(admin.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    image = tiny_image(admin)
    vm = student.call("POST", "/instances", 202, json={"name": unique("vm-"), "flavor": flavor["id"],
                                                       "image": image["id"], "project": student.project,
                                                       "key": student.key}).json()
    course = admin.call("GET", f"/projects/{student.project}", 200).json()
    _resp, doc = admin_portal.get("/admin/instances")
    rows = doc.find("tbody", id="all-instance-rows")
    assert rows.get("hx-get") == "/admin/fragments/instances" and rows.get("hx-trigger") == "every 2s"
    row = rows.find("tr", data_instance=vm["name"])
    assert row is not None and student.username in row.text() and course["name"] in row.text()

    def running_in_the_fragment():
        resp, fragment = admin_portal.get("/admin/fragments/instances")
        assert "<html" not in resp.text  # a piece of a page
        found = fragment.find("tr", data_instance=vm["name"])
        return found is not None and "running" in found.text()
    eventually(running_in_the_fragment, timeout=60, what="the instance running in the polled rows")

    # A host's page lists what runs there; its row's button disables it, then enables it again.
    host = student.wait_for(f"/instances/{vm['id']}", lambda r: r.json()["host"]).json()["host"]
    _resp, page = admin_portal.get(f"/admin/hosts/{host}")
    assert page.find("tr", data_instance=vm["id"]) is not None
    assert "(dir): " in page.find("dd", id="host-pool").text()  # its storage pool and the pool's kind
    _resp, doc = admin_portal.get("/admin/hosts")
    admin_portal.post(f"/admin/hosts/{host}/disable", doc, expect=303)
    assert admin.call("GET", f"/hosts/{host}", 200).json()["status"] == "disabled"
    _resp, doc = admin_portal.get("/admin/hosts")
    assert doc.find("tr", data_host=host).find("button", aria_label=f"Enable {host}") is not None
    admin_portal.post(f"/admin/hosts/{host}/enable", doc, expect=303)
    assert admin.call("GET", f"/hosts/{host}", 200).json()["status"] == "enabled"


# ----- who may -----------------------------------------------------------------------------------

def test_a_non_admin_is_refused_on_every_admin_page(stack, admin, student):
    from gateway.portal.registry import portal as registry
    pages = [p for p in registry.pages if p.rule.startswith("/admin/")]
    assert {p.rule for p in pages if "GET" in p.methods} == ADMIN_PAGES

    # A subnet of the admin's with a reserved address: the pages and forms of a subnet aim at it
    # (a /24 of 10.50.0.0 to 10.98.255.255: this file's; other files take other ranges).
    octets = (random.randrange(50, 99), random.randrange(256))
    cidr, spare = f"10.{octets[0]}.{octets[1]}.0/24", f"10.{octets[0]}.{octets[1] ^ 1}.0/24"
    reserved = cidr.replace(".0/24", ".10")
    subnet = admin.call("POST", "/subnets", 201, json={"name": unique("rf-net-"), "cidr": cidr,
                                                       "reserved": [reserved]}).json()
    # A floating pool of the admin's (a /28 of 100.70.0.0/16: this file's), which the pool forms aim at.
    pool = admin.call("POST", "/floating-pools", 201, json={
        "name": unique("rf-pool-"), "cidr": f"100.70.{octets[1]}.0/28"}).json()

    theirs = Portal(stack.url)
    theirs.login(student.username, student.password)
    _resp, home = theirs.get("/")
    assert not [a for a in home.find_all("a") if a.get("href", "").startswith("/admin")]  # no admin menu
    for rule in sorted(ADMIN_PAGES):
        path = (rule.replace("<host_name:name>", stack.hosts[0]).replace("<id:subnet_id>", str(subnet["id"]))
                .replace("<metric>", "cpu"))
        resp, _doc = theirs.get(path, expect=None)
        assert resp.status_code in (403, 404), f"GET {path} as a student: {resp.status_code}"

    target_id, _name = sign_up(stack)
    course = admin.call("POST", "/projects", 201, json={"name": unique("rf-")}).json()
    quota = admin.call("GET", f"/projects/{course['id']}/quota", 200).json()
    posts = {
        f"/admin/users/{target_id}/approve": {"project": str(course["id"])},
        f"/admin/users/{target_id}/reject": {"reason": "no"},
        f"/admin/users/{target_id}/suspend": {"reason": "no"},
        f"/admin/users/{target_id}/enable": {},
        f"/admin/users/{target_id}/delete": {},
        "/admin/users": {"username": unique("no"), "email": "no@lab.example"},
        "/admin/users/import": {"csv": f"username,email,full_name,course\n{unique('no')},n@lab.example,N,{course['name']}\n"},
        "/admin/courses": {"name": unique("no-")},
        f"/admin/courses/{course['id']}/quota": {"instances": "0"},
        "/admin/images": {"name": unique("no-"), "source_path": "/nonexistent/disk.qcow2"},
        f"/admin/hosts/{stack.hosts[0]}/disable": {},
        f"/admin/hosts/{stack.hosts[0]}/drain": {},
        f"/admin/hosts/{stack.hosts[0]}/alarms/new": {"name": unique("no-"), "metric": "cpu", "threshold": "90"},
        "/admin/subnets": {"name": unique("no-"), "cidr": spare},
        f"/admin/subnets/{subnet['id']}/reserve": {"ip": cidr.replace(".0/24", ".11")},
        f"/admin/subnets/{subnet['id']}/reserved/{reserved}/release": {},
        f"/admin/subnets/{subnet['id']}/delete": {},
        "/admin/floating-pools": {"name": unique("no-"), "cidr": f"100.70.{octets[1]}.16/28"},
        f"/admin/floating-pools/{pool['id']}/delete": {},
    }
    assert {re.sub(r"/\d+/", "/<id>/", p.replace(f"/{reserved}/", "/<ipv4:ip>/"))
            .replace(f"/{stack.hosts[0]}/disable", "/<host>/<action>")
            .replace(f"/{stack.hosts[0]}/drain", "/<host_name:name>/drain")
            .replace(f"/{stack.hosts[0]}/alarms/new", "/<host_name:name>/alarms/new") for p in posts} == {
        re.sub(r"<id:\w+>", "<id>", p.rule).replace("/<host_name:name>/<any(disable,enable):action>", "/<host>/<action>")
        for p in pages if "POST" in p.methods}
    for action, data in posts.items():
        resp, _doc = theirs.post(action, home, data)
        assert resp.status_code in (403, 404), f"POST {action} as a student: {resp.status_code}"
    assert admin.call("GET", f"/users/{target_id}", 200).json()["status"] == "pending"
    assert admin.call("GET", f"/projects/{course['id']}/quota", 200).json() == quota
    assert admin.call("GET", f"/hosts/{stack.hosts[0]}", 200).json()["state"] == "enabled"
    assert admin.call("GET", f"/subnets/{subnet['id']}", 200).json()["reserved"] == [reserved]
    assert posts["/admin/subnets"]["name"] not in {n["name"] for n in admin.call("GET", "/subnets", 200).json()}
    assert {p["name"] for p in admin.call("GET", "/floating-pools", 200).json()} & {
        pool["name"], posts["/admin/floating-pools"]["name"]} == {pool["name"]}
    admin.call("DELETE", f"/floating-pools/{pool['id']}", 200)
    admin.call("DELETE", f"/subnets/{subnet['id']}", 200)
