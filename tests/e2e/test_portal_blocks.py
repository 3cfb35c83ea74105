"""A course's subnet blocks on its portal page (gateway/portal/views/courses.py), over HTTP against
the running system, as a browser without JavaScript uses them: the teacher reserves a block through
the Reserve form (its refusals next to the subnet and size inputs), sees it in the panel and ends
it with its End button; a student is refused the page and its forms. The blocks are taken from a
subnet of this file's own, 10.101.0.0 to 10.149.255.255 (other files take other ranges), so the
default subnet's addresses stay as they are."""
import random

import pytest

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user
from tests.e2e.portal import Portal, field_error, unique
from tests.e2e.test_portal_courses import redirected_to_course

pytestmark = pytest.mark.e2e


def block_rows(page):
    table = page.by_id("blocks")
    assert table is not None, "the course page has no subnet blocks table"
    return {row.get("data-block"): row for row in table.find_all("tr") if row.get("data-block")}


@pytest.fixture(scope="module")
def admin(stack):
    return Api(stack.url).login("admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def subnet(admin):
    cidr = f"10.{random.randrange(101, 150)}.{random.randrange(256)}.0/24"
    return admin.call("POST", "/subnets", 201, json={"name": unique("blk-net-"), "cidr": cidr}).json()


@pytest.fixture(scope="module")
def course(stack, admin):
    """A course with a teacher (its manager, logged in to the portal) and a student (a member)."""
    teacher = approved_user(stack.url, admin, unique("bt"))
    project = admin.call("POST", "/projects", 201, json={
        "name": unique("blocks-"), "managers": [teacher.user_id]}).json()
    student = approved_user(stack.url, admin, unique("bs"), project=project["id"])

    class Course:
        pass
    made = Course()
    made.id, made.teacher, made.student = project["id"], teacher, student
    made.portal = Portal(stack.url).login(teacher.username, teacher.password)
    return made


def blocks_of(api, course):
    return api.call("GET", f"/projects/{course.id}/subnet-blocks", 200).json()


def the_block(admin, course, subnet):
    """The course's block of the file's subnet: the one the form reserved (or, run alone, a new one)."""
    found = [b for b in blocks_of(admin, course) if b["subnet"] == subnet["name"]]
    if found:
        return found[0]
    return admin.call("POST", f"/projects/{course.id}/subnet-blocks", 201, json={
        "prefixlen": 28, "subnet": subnet["name"]}).json()


def test_a_teacher_reserves_a_block_through_the_form_its_refusals_next_to_the_fields(course, admin, subnet):
    action = f"/courses/{course.id}/subnet-blocks"
    _resp, page = course.portal.get(f"/courses/{course.id}")
    assert page.by_id("blocks-section") is not None, "no Subnet blocks panel"
    assert block_rows(page) == {}
    form = page.find("form", action=action)
    assert form is not None, "a manager gets no Reserve form"
    assert [o.get("value") for o in form.by_id("prefixlen").find_all("option")] == [str(p) for p in range(28, 21, -1)]
    assert form.by_id("ends_at").get("type") == "datetime-local"

    # A subnet that does not exist: the service's 404, under the subnet's name, which is given back.
    resp, doc = course.portal.submit(page, action, {"prefixlen": "28", "subnet": "no-such-net", "ends_at": ""})
    assert resp.status_code == 404, resp.text[:3000]
    assert "unknown subnet" in field_error(doc, "subnet")
    assert doc.by_id("subnet").get("value") == "no-such-net"
    assert doc.by_id("refused").find("a").get("href") == "#reserve-block"
    assert doc.by_id("prefixlen").get("aria-invalid") is None
    # A size the select does not offer (a hand-made form): the schema's 400, under the size.
    resp, doc = course.portal.submit(doc, action, {"prefixlen": "21", "subnet": subnet["name"]})
    assert resp.status_code == 400, resp.text[:3000]
    assert field_error(doc, "prefixlen")
    assert blocks_of(admin, course) == []

    resp, _doc = course.portal.submit(doc, action, {"prefixlen": "28", "subnet": subnet["name"],
                                                    "ends_at": "2030-01-01T12:00"})
    redirected_to_course(resp, course.id)
    [block] = blocks_of(admin, course)
    assert (block["subnet"], block["size"], block["allocated"], block["free"]) == (subnet["name"], 16, 0, 16)
    assert block["ends_at"].startswith("2030-01-01T12:00:00")   # the input's time, taken as UTC
    _resp, page = course.portal.get(f"/courses/{course.id}")
    row = block_rows(page).get(block["cidr"])
    assert row is not None, "the reserved block is not in the panel"
    assert row.get("data-block-id") == str(block["id"])
    texts = [td.text() for td in row.find_all("td")]
    assert texts[:4] == [block["cidr"], subnet["name"], "0 allocated, 16 free (of 16)", "2030-01-01 12:00 UTC"]

    # The course has a block of that subnet already: the service's 409, next to the subnet's name.
    resp, doc = course.portal.submit(page, action, {"prefixlen": "27", "subnet": subnet["name"]})
    assert resp.status_code == 409, resp.text[:3000]
    assert "has a block of this subnet" in field_error(doc, "subnet")
    assert doc.by_id("prefixlen").find("option", value="27").get("selected") is not None
    assert [b["id"] for b in blocks_of(admin, course)] == [block["id"]]


def test_an_admin_gets_the_form_and_the_end_buttons_too(stack, course, admin, subnet):
    block = the_block(admin, course, subnet)
    page_of_admin = Portal(stack.url).login("admin", ADMIN_PASSWORD)
    _resp, page = page_of_admin.get(f"/courses/{course.id}")
    assert page.find("form", action=f"/courses/{course.id}/subnet-blocks") is not None
    assert page.find("form", action=f"/courses/{course.id}/subnet-blocks/{block['id']}/end") is not None


def test_a_student_sees_no_form_and_is_refused_reserve_and_end(stack, course, admin, subnet):
    block = the_block(admin, course, subnet)
    student = Portal(stack.url).login(course.student.username, course.student.password)
    resp, doc = student.get(f"/courses/{course.id}", expect=None)
    assert resp.status_code == 403, resp.status_code   # the course page is its managers'
    assert doc.find("form", action=f"/courses/{course.id}/subnet-blocks") is None
    assert doc.by_id("blocks") is None and block["cidr"] not in resp.text
    # Members may still list the blocks (the API): the page is refused for its members table.
    assert [b["id"] for b in blocks_of(course.student, course)] == [block["id"]]

    # The student's own session can still post the forms (their CSRF token): the service refuses.
    _resp, home = student.get("/")
    resp, _doc = student.post(f"/courses/{course.id}/subnet-blocks", home,
                              {"prefixlen": "28", "subnet": subnet["name"]})
    assert resp.status_code == 403, resp.status_code
    resp, _doc = student.post(f"/courses/{course.id}/subnet-blocks/{block['id']}/end", home)
    assert resp.status_code == 403, resp.status_code
    assert blocks_of(admin, course) == [block]


def test_the_end_button_asks_and_ends_the_block(course, admin, subnet):
    block = the_block(admin, course, subnet)
    action = f"/courses/{course.id}/subnet-blocks/{block['id']}/end"
    _resp, page = course.portal.get(f"/courses/{course.id}")
    form = page.find("form", action=action)
    assert form is not None and block["cidr"] in form.get("data-confirm", ""), "no End button asking for confirmation"
    resp, _doc = course.portal.submit(page, action)
    redirected_to_course(resp, course.id)
    assert blocks_of(admin, course) == []   # none of its addresses was held: back to the subnet at once
    _resp, page = course.portal.get(f"/courses/{course.id}")
    assert block_rows(page) == {}
    assert admin.call("GET", f"/subnets/{subnet['id']}", 200).json()["allocated"] == 0

    # Ended again (a second tab): the service's 404, on the panel.
    resp, doc = course.portal.post(action, page)
    assert resp.status_code == 404, resp.text[:3000]
    assert doc.by_id("blocks-section").find("p", role="alert") is not None
    assert doc.by_id("refused").find("a").get("href") == "#blocks-section"
