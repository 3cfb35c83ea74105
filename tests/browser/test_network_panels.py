"""A teacher opens the web to a course's instances in the browser: creates a security group on the
course page, adds a rule (tcp 80 from anywhere) through the form's labels, puts a student's
instance in it from the instance page, gives it a floating IP, and removes the rule again
(confirming the question)."""
import re

from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.e2e.api import Api, approved_user, running_instances

PASSWORD = "cedar-window-41"


def test_a_teacher_opens_a_port_gives_an_instance_a_floating_ip_and_closes_the_port_again(
        stack, admin_api, open_context, screenshots):
    teacher = approved_user(stack.url, admin_api, "wendy", PASSWORD)
    course = admin_api.call("POST", "/projects", 201, json={"name": "web-lab", "managers": [teacher.user_id]}).json()
    pool = admin_api.call("POST", "/floating-pools", 201, json={"name": "public", "cidr": "192.0.2.0/28"}).json()
    student = approved_user(stack.url, admin_api, "walt", PASSWORD, project=course["id"])
    [vm] = running_instances(student, 1, prefix="web")
    teacher = Api(stack.url).login("wendy", PASSWORD)   # a token that knows the course
    page = open_context().new_page()
    log_in(page, "wendy", PASSWORD)
    page.goto(f"/courses/{course['id']}")

    page.get_by_text("Create a group").click()
    page.get_by_label(re.compile(r"^Name")).fill("web")   # its name, then its help
    page.get_by_role("button", name="Create", exact=True).click()
    page.wait_for_url(re.compile(rf"/courses/{course['id']}$"))
    web = page.locator("table[data-group='web']")
    expect(web).to_contain_text("No rules")

    page.get_by_text("Add a rule").click()
    page.get_by_label(re.compile(r"^Group")).select_option(label="web")
    page.get_by_label(re.compile(r"^Protocol")).select_option("tcp")
    page.get_by_label(re.compile(r"^First port")).fill("80")
    page.get_by_label(re.compile(r"^Peer network")).fill("0.0.0.0/0")
    page.get_by_role("button", name="Add the rule").click()
    expect(web.locator("tr[data-rule-id]")).to_have_count(1)
    expect(web.locator("tr[data-rule-id] td")).to_contain_text(["ingress", "tcp", "80", "0.0.0.0/0"])

    page.get_by_role("button", name="Allocate a floating IP").click()
    expect(page.locator("#floating-ips")).to_contain_text("192.0.2.1")
    page.get_by_label(re.compile(r"^Instance")).select_option(label="web-0")
    page.get_by_role("button", name="Associate").click()
    expect(page.locator("tr[data-floating-ip='192.0.2.1']")).to_contain_text("web-0")
    screenshots(page, "course-network")

    # The instance's owner puts it in the new group from its page.
    own = open_context().new_page()
    log_in(own, "walt", PASSWORD)
    own.goto(f"/instances/{vm}")
    expect(own.locator("#floating-ip")).to_contain_text("192.0.2.1")
    own.get_by_text("Change its security groups").click()
    form = own.locator("#security-groups-form")
    form.get_by_label("web", exact=True).check()
    form.get_by_role("button", name="Apply now").click()
    expect(own.locator("#instance-groups")).to_contain_text("default, web")
    assert sorted(g["name"] for g in student.call("GET", f"/instances/{vm}/security-groups", 200).json()) == [
        "default", "web"]

    # The teacher closes the port again.
    page.reload()
    page.once("dialog", lambda dialog: dialog.accept())
    web.get_by_role("button", name=re.compile(r"^Remove rule ingress tcp 80")).click()
    expect(web).to_contain_text("No rules")
    [group] = [g for g in teacher.call("GET", f"/projects/{course['id']}/security-groups", 200).json()
               if g["name"] == "web"]
    assert group["rules"] == [] and group["instances"] == [vm]
    assert pool["name"] == "public"
