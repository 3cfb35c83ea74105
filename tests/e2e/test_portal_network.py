"""Security groups and floating IPs in the portal (gateway/portal/views/network.py) through their
forms, as a browser without JavaScript, against the shared stack: a teacher's course page creates
a group, adds and removes rules (refusals next to the fields), deletes it (the `default` group's
refusal on the panel); allocates floating IPs from a pool (the quota's refusal on the form),
associates one with a student's instance (a second one for the same instance refused next to the
instance), disassociates and releases; the student's instance page shows its groups and floating
IP and changes its groups; an admin creates and deletes a floating pool on its page. The pools
take 100.68.0.0/15 (other files take other ranges)."""
import random

import pytest

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user, running_instances
from tests.e2e.portal import Portal, field_error, unique
from tests.e2e.test_portal_courses import redirected_to_course

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def admin(stack):
    return Api(stack.url).login("admin", ADMIN_PASSWORD)


def fresh_pool_cidr(prefixlen=28):
    """A pool's network: a /28 of 100.68.0.0/16, a /29 of 100.69.0.0/16 (they never overlap)."""
    second = 68 if prefixlen == 28 else 69
    return f"100.{second}.{random.randrange(256)}.{random.randrange(0, 256, 1 << (32 - prefixlen))}/{prefixlen}"


@pytest.fixture(scope="module")
def pool(admin):
    return admin.call("POST", "/floating-pools", 201, json={"name": unique("ppool-"), "cidr": fresh_pool_cidr()}).json()


@pytest.fixture(scope="module")
def course(stack, admin):
    """A course (two floating IPs at most) with a teacher (its manager, logged in to the portal)
    and a student with a running instance."""
    teacher = approved_user(stack.url, admin, unique("nt"))
    project = admin.call("POST", "/projects", 201, json={
        "name": unique("net-"), "managers": [teacher.user_id], "quota": {"floating_ips": 2}}).json()
    student = approved_user(stack.url, admin, unique("ns"), project=project["id"])
    username, password = teacher.username, teacher.password
    teacher = Api(stack.url).login(username, password)   # a token that knows the new role

    class Course:
        pass
    made = Course()
    made.id, made.teacher, made.student = project["id"], teacher, student
    [made.instance] = running_instances(student, 1, prefix="pnet")
    made.portal = Portal(stack.url).login(username, password)
    return made


def group_tables(page):
    section = page.by_id("groups-section")
    assert section is not None, "the course page has no Security groups panel"
    return {t.get("data-group"): t for t in section.find_all("table") if t.get("data-group")}


def rule_texts(table):
    return [[td.text() for td in tr.find_all("td")][:4] for tr in table.find_all("tr") if tr.get("data-rule-id")]


def groups_of(api, course):
    return {g["name"]: g for g in api.call("GET", f"/projects/{course.id}/security-groups", 200).json()}


def test_a_teacher_creates_a_group_adds_and_removes_rules_and_deletes_it(course, admin):
    path = f"/courses/{course.id}"
    _resp, page = course.portal.get(path)
    tables = group_tables(page)
    assert sorted(rule_texts(tables["default"])) == [["egress", "any", "all", "0.0.0.0/0"],
                                                     ["ingress", "tcp", "22", "0.0.0.0/0"]]
    assert "(1 instance)" in tables["default"].find("caption").text()   # the student's

    # Creating: a name the schema refuses (400), then a good one, then the same again (409).
    action = f"{path}/security-groups"
    resp, doc = course.portal.submit(page, action, {"name": "no spaces", "description": "x"})
    assert resp.status_code == 400, resp.text[:3000]
    assert field_error(doc, "create-group-name")
    assert doc.by_id("create-group-name").get("value") == "no spaces"
    assert doc.by_id("refused").find("a").get("href") == "#create-group"
    resp, _doc = course.portal.submit(doc, action, {"name": "web", "description": "the web servers"})
    redirected_to_course(resp, course.id)
    resp, doc = course.portal.submit(page, action, {"name": "web"})
    assert resp.status_code == 409, resp.text[:3000]
    assert field_error(doc, "create-group-name")
    web = groups_of(admin, course)["web"]
    assert (web["description"], web["rules"], web["instances"]) == ("the web servers", [], [])

    # A rule: ports on icmp are refused next to the first port; web from the default group's members.
    _resp, page = course.portal.get(path)
    assert "No rules" in group_tables(page)["web"].text()
    action = f"{path}/security-groups/rules"
    form = page.find("form", action=action)
    assert [o.text() for o in form.by_id("add-rule-group").find_all("option")] == sorted(["default", "web"])
    resp, doc = course.portal.submit(page, action, {"group": str(web["id"]), "protocol": "icmp", "port_min": "3",
                                                    "cidr": "0.0.0.0/0"})
    assert resp.status_code == 400, resp.text[:3000]
    assert field_error(doc, "add-rule-port_min")
    assert doc.by_id("add-rule-protocol").find("option", value="icmp").get("selected") is not None
    resp, _doc = course.portal.submit(doc, action, {"group": str(web["id"]), "direction": "ingress", "protocol": "tcp",
                                                    "port_min": "80", "port_max": "81", "remote_group": "default"})
    redirected_to_course(resp, course.id)
    resp, _doc = course.portal.submit(doc, action, {"group": str(web["id"]), "direction": "egress", "protocol": "udp",
                                                    "port_min": "53", "cidr": "10.0.0.0/8"})
    redirected_to_course(resp, course.id)
    _resp, page = course.portal.get(path)
    assert sorted(rule_texts(group_tables(page)["web"])) == [["egress", "udp", "53", "10.0.0.0/8"],
                                                             ["ingress", "tcp", "80-81", "group default"]]
    web = groups_of(admin, course)["web"]
    udp = next(r for r in web["rules"] if r["protocol"] == "udp")
    resp, _doc = course.portal.submit(page, f"{path}/security-groups/{web['id']}/rules/{udp['id']}/remove")
    redirected_to_course(resp, course.id)
    assert [r["protocol"] for r in groups_of(admin, course)["web"]["rules"]] == ["tcp"]

    # Deleting: the default group is refused on the panel (409; it offers no button for it); web goes.
    _resp, page = course.portal.get(path)
    default = groups_of(admin, course)["default"]
    assert page.find("form", action=f"{path}/security-groups/{default['id']}/delete") is None
    resp, doc = course.portal.post(f"{path}/security-groups/{default['id']}/delete", page)
    assert resp.status_code == 409, resp.text[:3000]
    assert doc.by_id("groups-section").find("p", role="alert") is not None
    assert doc.by_id("refused").find("a").get("href") == "#groups-section"
    resp, _doc = course.portal.submit(page, f"{path}/security-groups/{web['id']}/delete")
    redirected_to_course(resp, course.id)
    assert sorted(groups_of(admin, course)) == ["default"]


def floating_rows(page):
    table = page.by_id("floating-ips")
    assert table is not None, "the course page has no Floating IPs panel"
    return {tr.get("data-floating-ip"): [td.text() for td in tr.find_all("td")][:3] for tr in table.find_all("tr")
            if tr.get("data-floating-ip")}


def floating_ips_of(api, course):
    return [f for f in api.call("GET", "/floating-ips", 200).json() if f["project"] == course.id]


def test_a_teacher_allocates_associates_disassociates_and_releases_floating_ips(course, admin, pool):
    path = f"/courses/{course.id}"
    _resp, page = course.portal.get(path)
    assert floating_rows(page) == {}
    assert page.find("form", action=f"{path}/floating-ips/associate") is None   # nothing to associate yet
    options = [o.get("value") for o in page.by_id("allocate-ip-pool").find_all("option")]
    assert pool["name"] in options
    action = f"{path}/floating-ips"
    for _ in range(2):
        resp, _doc = course.portal.submit(page, action, {"pool": pool["name"]})
        redirected_to_course(resp, course.id)
    resp, doc = course.portal.submit(page, action, {"pool": pool["name"]})   # the course's quota is 2
    assert resp.status_code == 403, resp.text[:3000]
    assert "over quota" in doc.by_id("allocate-ip").find("p", role="alert").text()
    assert doc.by_id("refused").find("a").get("href") == "#allocate-ip"
    first, second = sorted(floating_ips_of(admin, course), key=lambda f: f["id"])
    assert first["pool"] == second["pool"] == pool["name"]

    _resp, page = course.portal.get(path)
    assert floating_rows(page) == {first["ip"]: [first["ip"], pool["name"], "none"],
                                   second["ip"]: [second["ip"], pool["name"], "none"]}
    action = f"{path}/floating-ips/associate"
    form = page.find("form", action=action)
    assert course.instance in [o.get("value") for o in form.by_id("associate-ip-instance").find_all("option")]
    resp, _doc = course.portal.submit(page, action, {"floating_ip": str(first["id"]), "instance": course.instance})
    redirected_to_course(resp, course.id)
    instance = admin.call("GET", f"/instances/{course.instance}", 200).json()
    _resp, page = course.portal.get(path)
    assert floating_rows(page)[first["ip"]] == [first["ip"], pool["name"], f"{instance['name']} ({instance['ip']})"]
    # The instance has one already: the service's 409 next to the instance select, the IP kept chosen.
    resp, doc = course.portal.post(action, page, {"floating_ip": str(second["id"]), "instance": course.instance})
    assert resp.status_code == 409, resp.text[:3000]
    assert "floating IP already" in field_error(doc, "associate-ip-instance")
    assert doc.by_id("associate-ip-floating_ip").find("option", value=str(second["id"])).get("selected") is not None
    # No choice at all (a hand-made form): named by the gateway's own reading of the select.
    resp, doc = course.portal.post(action, page, {"instance": course.instance})
    assert resp.status_code == 400 and field_error(doc, "associate-ip-floating_ip")

    # The student's instance page shows it.
    student = Portal(course.portal.base, course.student.token)
    _resp, own = student.get(f"/instances/{course.instance}")
    assert first["ip"] in own.by_id("floating-ip").text()

    resp, _doc = course.portal.submit(page, f"{path}/floating-ips/{first['id']}/disassociate")
    redirected_to_course(resp, course.id)
    assert admin.call("GET", f"/floating-ips/{first['id']}", 200).json()["instance"] is None
    _resp, page = course.portal.get(path)
    assert page.find("form", action=f"{path}/floating-ips/{first['id']}/disassociate") is None
    for made in (first, second):
        resp, _doc = course.portal.submit(page, f"{path}/floating-ips/{made['id']}/release")
        redirected_to_course(resp, course.id)
    assert floating_ips_of(admin, course) == []
    # Released again (a second tab): the service's 404, on the panel.
    resp, doc = course.portal.post(f"{path}/floating-ips/{first['id']}/release", page)
    assert resp.status_code == 404, resp.text[:3000]
    assert doc.by_id("floating-ips-section").find("p", role="alert") is not None


def test_the_instance_page_shows_and_changes_its_groups(stack, course, admin):
    groups = groups_of(admin, course)
    if "db" not in groups:
        made = course.teacher.call("POST", "/security-groups", 201, json={"project": course.id, "name": "db"}).json()
        course.teacher.call("POST", f"/security-groups/{made['id']}/rules", 201, json={
            "protocol": "tcp", "port_min": 5432, "remote_group": "default"})
    student = Portal(stack.url, course.student.token)
    path = f"/instances/{course.instance}"
    _resp, page = student.get(path)
    assert [s.get("data-group") for s in page.by_id("instance-groups").find_all("span")] == ["default"]
    assert page.by_id("floating-ip").text() == "none"
    form = page.by_id("security-groups-form")
    boxes = {i.get("value"): i.get("checked") is not None for i in form.find_all("input", type="checkbox")}
    assert boxes == {"default": True, "db": False}

    resp, doc = student.post(f"{path}/security-groups", form, {})   # none: the schema wants at least one
    assert resp.status_code == 400, resp.text[:3000]
    assert doc.by_id("security_groups-error") is not None
    resp, doc = student.post(f"{path}/security-groups", form, {"security_groups": ["default", "nosuch"]})
    assert resp.status_code == 400 and doc.by_id("security_groups-error").text()
    resp, _doc = student.post(f"{path}/security-groups", form, {"security_groups": ["default", "db"]})
    assert resp.status_code == 303 and resp.headers["Location"] == path
    assert sorted(g["name"] for g in course.student.call("GET", f"{path}/security-groups", 200).json()) == [
        "db", "default"]
    _resp, page = student.get(path)
    assert sorted(s.get("data-group") for s in page.by_id("instance-groups").find_all("span")) == ["db", "default"]
    assert page.find("table", data_group_rules="db") is not None
    resp, _doc = student.post(f"{path}/security-groups", page.by_id("security-groups-form"),
                              {"security_groups": ["default"]})
    assert resp.status_code == 303

    # A classmate neither sees the instance nor changes its groups (404, as the page); nor the course's.
    classmate = approved_user(stack.url, admin, unique("nc"), project=course.id)
    other = Portal(stack.url, classmate.token)
    _resp, home = other.get("/")
    resp, _doc = other.post(f"{path}/security-groups", home, {"security_groups": ["default"]})
    assert resp.status_code == 404, resp.status_code
    resp, _doc = other.post(f"/courses/{course.id}/security-groups", home, {"name": "mine"})
    assert resp.status_code == 403, resp.status_code
    assert "mine" not in groups_of(admin, course)


def test_an_admin_creates_and_deletes_a_floating_pool(stack, admin, course, pool):
    portal = Portal(stack.url).login("admin", ADMIN_PASSWORD)
    _resp, page = portal.get("/admin/floating-pools")
    assert page.find("a", href="/admin/floating-pools") is not None, "no link in the admin navigation"
    assert pool["name"] in {tr.get("data-pool") for tr in page.by_id("pools").find_all("tr")}
    assert "default 10.99.0.0/22" in page.by_id("networks-in-use").text()   # the guests' subnets a pool may not overlap
    resp, doc = portal.submit(page, "/admin/floating-pools", {"name": unique("ppool-"), "cidr": "100.68.0.1/24"})
    assert resp.status_code == 400, resp.text[:3000]
    assert field_error(doc, "create-pool-cidr")
    name, cidr = unique("ppool-"), fresh_pool_cidr(29)
    low = cidr.rsplit(".", 1)[0]
    first = int(cidr.rsplit(".", 1)[1].split("/")[0])
    resp, _doc = portal.submit(doc, "/admin/floating-pools", {
        "name": name, "cidr": cidr, "reserved": f"{low}.{first + 1}\n{low}.{first + 2}"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/admin/floating-pools"
    made = next(p for p in admin.call("GET", "/floating-pools", 200).json() if p["name"] == name)
    assert made["reserved"] == [f"{low}.{first + 1}", f"{low}.{first + 2}"] and made["free"] == 4

    # A pool with an address allocated is refused (409) on the page; free, it goes.
    held = course.teacher.call("POST", "/floating-ips", 201, json={"project": course.id, "pool": name}).json()
    _resp, page = portal.get("/admin/floating-pools")
    assert held["ip"] in {tr.get("data-floating-ip") for tr in page.by_id("allocated").find_all("tr")}
    resp, doc = portal.submit(page, f"/admin/floating-pools/{made['id']}/delete")
    assert resp.status_code == 409, resp.text[:3000]
    assert doc.find("p", role="alert") is not None
    course.teacher.call("DELETE", f"/floating-ips/{held['id']}", 200)
    resp, _doc = portal.submit(page, f"/admin/floating-pools/{made['id']}/delete")
    assert resp.status_code == 303
    assert name not in {p["name"] for p in admin.call("GET", "/floating-pools", 200).json()}

    # A student is refused the page (it shows the subnets: list_subnets is the admins') and its form.
    student = Portal(stack.url, course.student.token)
    resp, page = student.get("/admin/floating-pools", expect=403)
    assert page.find("form", action="/admin/floating-pools") is None and name not in resp.text
    _resp, home = student.get("/")
    resp, _doc = student.post("/admin/floating-pools", home, {"name": unique("ppool-"), "cidr": fresh_pool_cidr()})
    assert resp.status_code == 403, resp.status_code


def test_a_student_gives_the_instance_a_floating_ip_from_its_page(stack, course, admin, pool):
    """Students have no course page: the instance page allocates one and associates it, takes it
    off, and associates a free one of theirs."""
    student = Portal(stack.url, course.student.token)
    path = f"/instances/{course.instance}"
    _resp, page = student.get(path)
    assert page.by_id("floating-ip").text() == "none"
    assert page.by_id("associate-ip-form") is None   # no free floating IP of theirs
    assert pool["name"] in [o.get("value") for o in page.by_id("floating-ip-pool").find_all("option")]
    resp, _doc = student.submit(page, f"{path}/floating-ip", {"pool": pool["name"]})
    assert resp.status_code == 303 and resp.headers["Location"] == path, resp.text[:3000]
    [first] = floating_ips_of(admin, course)
    assert (first["instance"], first["user_id"], first["pool"]) == (course.instance, course.student.user_id, pool["name"])
    _resp, page = student.get(path)
    assert page.by_id("floating-ip").text().startswith(f"{first['ip']} (pool {pool['name']})")
    assert page.by_id("new-ip-form") is None

    # Another one for it (a second tab): allocated, then the association is refused (409) on the page.
    resp, doc = student.post(f"{path}/floating-ip", page, {"pool": pool["name"]})
    assert resp.status_code == 409, resp.text[:3000]
    assert f"has floating IP {first['ip']} already" in doc.by_id("network").find("p", role="alert").text()
    second = next(f for f in floating_ips_of(admin, course) if f["id"] != first["id"])
    assert second["instance"] is None

    resp, _doc = student.submit(page, f"{path}/floating-ip/{first['id']}/disassociate")
    assert resp.status_code == 303
    _resp, page = student.get(path)
    assert page.by_id("floating-ip").text() == "none"
    offered = {o.get("value") for o in page.by_id("floating-ip-floating_ip").find_all("option")}
    assert offered == {str(first["id"]), str(second["id"])}
    resp, doc = student.submit(page, f"{path}/floating-ip", {"pool": pool["name"]})   # the course's quota is 2
    assert resp.status_code == 403 and "over quota" in doc.by_id("network").find("p", role="alert").text()
    resp, _doc = student.submit(page, f"{path}/floating-ip/associate", {"floating_ip": str(second["id"])})
    assert resp.status_code == 303
    assert admin.call("GET", f"/floating-ips/{second['id']}", 200).json()["instance"] == course.instance
    for made in (first, second):
        course.student.call("DELETE", f"/floating-ips/{made['id']}", 200)
