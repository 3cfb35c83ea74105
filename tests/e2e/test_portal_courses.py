"""The teachers' portal pages (gateway/portal/views/courses.py), over HTTP against the running
system, as a browser without JavaScript uses them: log in through the login form, send every form
with the CSRF token of the page it is on, read the HTML. The services decide who may do what; these
tests check that the pages show what they answer and refuse."""
import pytest

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user, tiny_image
from tests.e2e.portal import Portal, unique

pytestmark = pytest.mark.e2e


def member_rows(doc):
    table = doc.by_id("members")
    assert table is not None, "the course page has no members table"
    return {row.get("data-member"): row for row in table.find_all("tr") if row.get("data-member")}


def cells(row):
    return [td.text() for td in row.find_all("td")]


def redirected_to_course(resp, project_id):
    assert resp.status_code == 303, resp.text[:3000]
    assert resp.headers["Location"].endswith(f"/courses/{project_id}"), resp.headers["Location"]


# ----- fixtures ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def admin(stack):
    return Api(stack.url).login("admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def course(stack, admin):
    """A course the admin made (REST) with a teacher as its manager and a student as a member,
    and the teacher logged in to the portal."""
    teacher = approved_user(stack.url, admin, unique("t"))
    name = unique("course-")
    project = admin.call("POST", "/projects", 201, json={
        "name": name, "description": "Operating systems, spring", "managers": [teacher.user_id]}).json()
    student = approved_user(stack.url, admin, unique("s"), project=project["id"])

    class Course:
        pass
    made = Course()
    made.id, made.name, made.teacher, made.student = project["id"], name, teacher, student
    made.portal = Portal(stack.url).login(teacher.username, teacher.password)
    return made


def class_list(*rows, header="username,email,full_name"):
    return "\n".join([header, *(",".join(row) for row in rows)]) + "\n"


# ----- tests ------------------------------------------------------------------------------------------

def test_a_teacher_sees_their_course_in_the_list_and_the_menu(course):
    _resp, doc = course.portal.get("/courses")
    assert doc.find("a", href="/courses") is not None, "the menu has no Courses link for a manager"
    row = doc.by_id("courses").find("tr", data_course=course.name)
    assert row is not None, f"{course.name} is not listed"
    assert row.find("a", href=f"/courses/{course.id}") is not None
    assert "Operating systems, spring" in cells(row)
    assert "manager" in cells(row)
    # the teacher's own project (from the sign-up approval) lists them as member: not a course they manage
    assert row.parent.find("tr", data_course=f"p-{course.teacher.username}") is None

    _resp, page = course.portal.get(f"/courses/{course.id}")
    assert course.name in page.find("h1").text()
    assert "Operating systems, spring" in page.by_id("course-description").text()
    assert course.teacher.username in member_rows(page)
    assert cells(member_rows(page)[course.student.username])[2] == "member"
    assert page.find("table", class_="usage") is not None, "no usage against the quota"
    assert page.find("a", href=f"/courses/{course.id}/instances") is not None
    # The subnet blocks' panel (none yet) with its Reserve form (test_portal_blocks.py uses them).
    blocks = page.by_id("blocks")
    assert blocks is not None and not [tr for tr in blocks.find_all("tr") if tr.get("data-block")]
    assert page.find("form", action=f"/courses/{course.id}/subnet-blocks") is not None


def test_a_teacher_imports_a_class_list_and_sees_the_report_and_the_new_members(course, admin):
    names = [unique("imp") for _ in range(3)]
    csv_text = class_list(*[(n, f"{n}@lab.example", f"Student {n.upper()}") for n in names])
    _resp, page = course.portal.get(f"/courses/{course.id}")
    resp, doc = course.portal.submit(page, f"/courses/{course.id}/import", {"csv": ""},
                                     files={"csv": ("class.csv", csv_text.encode(), "text/csv")}, expect=200)
    report = doc.by_id("import-report")
    assert report is not None, resp.text[:3000]
    rows = [cells(tr) for tr in report.find("tbody").find_all("tr")]
    assert rows == [[str(line), name, "created"] for line, name in zip((2, 3, 4), names)]
    members = member_rows(doc)  # the same answer already lists them
    for name in names:
        assert cells(members[name])[1:3] == [f"Student {name.upper()}", "member"]

    _resp, again = course.portal.get(f"/courses/{course.id}")
    assert set(names) <= set(member_rows(again))
    listed = {m["username"] for m in admin.call("GET", f"/projects/{course.id}/members", 200).json()}
    assert set(names) <= listed

    # The same list once more, pasted into the text area: nobody is created twice.
    _resp, doc = course.portal.submit(again, f"/courses/{course.id}/import", {"csv": csv_text}, expect=200)
    rows = [cells(tr) for tr in doc.by_id("import-report").find("tbody").find_all("tr")]
    assert rows == [[str(line), name, "already there"] for line, name in zip((2, 3, 4), names)]


def test_a_class_list_with_a_bad_row_is_refused_naming_its_line_and_nothing_is_imported(course, admin):
    good, bad, also_good = unique("ok"), unique("bad"), unique("ok")
    csv_text = class_list((good, f"{good}@lab.example", "Good One"), (bad, "not-an-address", "Bad Row"),
                          (also_good, f"{also_good}@lab.example", "Good Two"))
    _resp, page = course.portal.get(f"/courses/{course.id}")
    resp, doc = course.portal.submit(page, f"/courses/{course.id}/import", {"csv": csv_text})
    assert resp.status_code == 400, resp.text[:3000]
    errors = doc.by_id("csv-error")
    assert errors is not None, resp.text[:3000]
    messages = [li.text() for li in errors.find_all("li")]
    assert any(m.startswith("line 3: email") for m in messages), messages
    assert not any("line 2" in m or "line 4" in m for m in messages), messages
    assert "nothing was imported" in doc.by_id("form-error").text()
    assert doc.by_id("refused").find("a").get("href") == "#import"  # the way to it, first on the page
    textarea = doc.by_id("csv")
    assert textarea.get("aria-invalid") == "true" and textarea.get("aria-describedby") == "csv-error"
    assert bad in textarea.text(), "the refused text is not given back to be fixed"
    assert doc.by_id("import-report") is None
    assert not {good, bad, also_good} & set(member_rows(doc))
    listed = {m["username"] for m in admin.call("GET", f"/projects/{course.id}/members", 200).json()}
    assert not {good, bad, also_good} & listed
    users = {u["username"] for u in admin.call("GET", "/users", 200).json()}
    assert not {good, bad, also_good} & users


def test_a_teacher_adds_and_removes_a_member(stack, course, admin):
    newcomer = approved_user(stack.url, admin, unique("n"))
    _resp, page = course.portal.get(f"/courses/{course.id}")
    assert newcomer.username not in member_rows(page)

    resp, _doc = course.portal.submit(page, f"/courses/{course.id}/members",
                                      {"user": str(newcomer.user_id), "role": "member", "quota.instances": "2"})
    redirected_to_course(resp, course.id)
    _resp, page = course.portal.get(f"/courses/{course.id}")
    row = member_rows(page).get(newcomer.username)
    assert row is not None, "the added member is not listed"
    assert cells(row)[2:4] == ["member", "instances ≤ 2"]

    remove = f"/courses/{course.id}/members/{newcomer.user_id}/remove"
    form = page.find("form", action=remove)
    assert form is not None and form.get("data-confirm"), "no Remove button asking for confirmation"
    resp, _doc = course.portal.submit(page, remove)
    redirected_to_course(resp, course.id)
    _resp, page = course.portal.get(f"/courses/{course.id}")
    assert newcomer.username not in member_rows(page)
    listed = {m["username"] for m in admin.call("GET", f"/projects/{course.id}/members", 200).json()}
    assert newcomer.username not in listed


def test_adding_a_user_who_does_not_exist_shows_the_error_at_the_user_field(course):
    _resp, page = course.portal.get(f"/courses/{course.id}")
    resp, doc = course.portal.submit(page, f"/courses/{course.id}/members", {"user": "999999", "role": "member"})
    assert resp.status_code == 404, resp.text[:3000]
    field = doc.by_id("user")
    assert field.get("aria-invalid") == "true" and field.get("value") == "999999"
    assert doc.by_id("user-error") is not None


def test_a_student_is_refused_the_course_pages(stack, course):
    student = Portal(stack.url).login(course.student.username, course.student.password)
    resp, doc = student.get(f"/courses/{course.id}", expect=None)
    assert resp.status_code in (403, 404), resp.status_code
    assert doc.by_id("members") is None and course.teacher.username not in resp.text
    assert doc.by_id("blocks") is None and doc.find("form", action=f"/courses/{course.id}/subnet-blocks") is None
    assert doc.find("p", role="alert") is not None, "the refusal is not shown"

    _resp, listing = student.get("/courses")
    assert listing.find("tr", data_course=course.name) is None, "a member is listed as managing the course"
    assert listing.find("a", href="/courses") is None, "the menu offers Courses to a student"

    # The student's own session can still post forms (their CSRF token): the service refuses.
    _resp, home = student.get("/")
    resp, _doc = student.post(f"/courses/{course.id}/members", home,
                              {"user": str(course.student.user_id), "role": "manager"})
    assert resp.status_code in (403, 404), resp.status_code


def test_an_invalid_default_is_shown_at_its_field_and_a_valid_one_is_saved(course, admin):
    _resp, page = course.portal.get(f"/courses/{course.id}")
    action = f"/courses/{course.id}/defaults"
    resp, doc = course.portal.submit(page, action, {"description": "Operating systems, spring",
                                                    "default_lease_hours": "0", "idle_policy": "suspend"})
    assert resp.status_code == 400, resp.text[:3000]
    field = doc.by_id("default_lease_hours")
    assert field.get("aria-invalid") == "true" and field.get("aria-describedby") == "default_lease_hours-error"
    assert doc.by_id("default_lease_hours-error") is not None
    assert doc.by_id("description").get("aria-invalid") is None
    assert admin.call("GET", f"/projects/{course.id}", 200).json()["default_lease_hours"] is None

    resp, _doc = course.portal.submit(doc, action, {"description": "Operating systems, spring (labs)",
                                                    "default_lease_hours": "24", "idle_policy": "none",
                                                    "default_flavor": "", "default_image": ""})
    redirected_to_course(resp, course.id)
    project = admin.call("GET", f"/projects/{course.id}", 200).json()
    assert (project["description"], project["default_lease_hours"], project["idle_policy"]) == (
        "Operating systems, spring (labs)", 24, "none")
    _resp, page = course.portal.get(f"/courses/{course.id}")
    assert "24 hours" in page.by_id("defaults").text()
    assert page.by_id("default_lease_hours").get("value") == "24"


def test_the_course_instances_page_lists_the_students_instances_live(course):
    student = course.student
    flavor = min(student.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    image = tiny_image(student)
    name = unique("vm-")
    made = student.call("POST", "/instances", 202, json={
        "name": name, "flavor": flavor["id"], "image": image["id"], "key": student.key,
        "project": course.id}).json()

    _resp, page = course.portal.get(f"/courses/{course.id}/instances")
    body = page.by_id("course-instance-rows")
    assert body.get("hx-get") == f"/courses/{course.id}/instances/rows"
    assert body.get("hx-trigger") == "every 2s" and body.get("hx-swap") == "outerHTML"
    row = body.find("tr", data_instance=name)
    assert row is not None, "the student's instance is not listed"
    assert row.find("a", href=f"/instances/{made['id']}") is not None
    assert cells(row)[1] == str(student.user_id)

    student.wait_for(f"/instances/{made['id']}", lambda r: r.json()["state"] == "running", timeout=60)
    _resp, fragment = course.portal.get(f"/courses/{course.id}/instances/rows")
    assert fragment.find("tbody").get("id") == "course-instance-rows"  # replaces itself
    row = fragment.find("tr", data_instance=name)
    assert row.find("span", class_="state state-running") is not None, row.text()
