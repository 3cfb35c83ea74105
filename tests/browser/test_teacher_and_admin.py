"""A teacher imports a class list from a file in the browser; an admin reads the audit log, migrates
an instance and drains a host."""
import re

from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.e2e.api import ADMIN_PASSWORD, approved_user, tiny_image
from tests.e2e.extra_host import added_host

PASSWORD = "maple-lantern-77"


def test_a_teacher_imports_members_from_a_csv_file_and_reads_the_report(
        stack, admin_api, open_context, screenshots, tmp_path):
    teacher = approved_user(stack.url, admin_api, "tess", PASSWORD)
    course = admin_api.call("POST", "/projects", 201, json={
        "name": "networks", "description": "Computer networks", "managers": [teacher.user_id]}).json()
    class_list = tmp_path / "networks.csv"
    class_list.write_text("username,email,full_name\nnina,nina@lab.example,Nina N\n"
                          "omar,omar@lab.example,Omar O\npia,pia@lab.example,Pia P\n")
    page = open_context().new_page()
    log_in(page, teacher.username, PASSWORD)
    page.get_by_role("link", name="Courses").click()
    page.get_by_role("link", name="networks").first.click()
    page.wait_for_url(re.compile(rf"/courses/{course['id']}$"))
    page.get_by_label("CSV file").set_input_files(str(class_list))
    page.get_by_role("button", name="Import", exact=True).click()
    report = page.locator("#import-report")
    expect(report).to_contain_text("3 created")
    for name in ("nina", "omar", "pia"):
        expect(report.locator("tr", has_text=name)).to_contain_text("created")
    members = {m["username"] for m in admin_api.call("GET", f"/projects/{course['id']}/members", 200).json()}
    assert {"nina", "omar", "pia"} <= members
    screenshots(page, "course")


def test_an_admin_reads_the_audit_log(stack, admin_api, open_context, screenshots):
    user = approved_user(stack.url, admin_api, "audra", PASSWORD)
    page = open_context().new_page()
    log_in(page, "admin", ADMIN_PASSWORD)
    page.get_by_role("link", name="Audit").click()
    approval = page.locator(f"#audit tr[data-path='/api/v1/users/{user.user_id}/approve']")
    expect(approval).to_contain_text("admin")
    expect(approval).to_contain_text("approve_user")
    screenshots(page, "admin-audit")
    # The portal's own forms are in it too: this login is not (not a state change), the key import is.
    user_page = open_context().new_page()
    log_in(user_page, user.username, PASSWORD)
    user_page.goto("/keys")
    user_page.get_by_label("Name", exact=True).first.fill("bad")
    user_page.get_by_label("Public key").fill("not a key")
    user_page.get_by_role("button", name="Import").click()
    expect(user_page.locator("#public_key")).to_have_attribute("aria-invalid", "true")
    page.reload()
    expect(page.locator("#audit tr[data-path='/keys']").first).to_contain_text(user.username)


def test_an_admin_migrates_an_instance_from_its_page_and_drains_the_host_it_went_to(
        stack, admin_api, open_context, screenshots):
    """A second host agent joins the stack (test driver) after a student's instance runs on the
    stack's own host; the admin moves it to the new host from the instance page's form, sees it
    running there (the polled live part), then drains the new host from /admin/hosts: the instance
    migrates back, the new host ends disabled. (Only the new host is drained: the stack's own one
    holds the instances of the module's other tests.)"""
    owner = approved_user(stack.url, admin_api, "milo", PASSWORD)
    flavor = min(owner.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    image = tiny_image(owner)
    made = owner.call("POST", "/instances", 202, json={"name": "wanderer", "flavor": flavor["id"],
                                                      "image": image["id"], "key": owner.key}).json()
    vm = owner.wait_for(f"/instances/{made['id']}", lambda r: r.json()["state"] == "running", timeout=60).json()
    source = vm["host"]
    with added_host(stack, admin_api, "host-mig") as extra:
        destination = extra
        page = open_context().new_page()
        log_in(page, "admin", ADMIN_PASSWORD)
        page.goto(f"/instances/{vm['id']}")
        expect(page.locator("#instance-host")).to_have_text(source)
        page.get_by_text("Migrate to another host").click()
        page.get_by_label("Destination host").select_option(destination)
        page.get_by_role("button", name="Migrate", exact=True).click()
        page.wait_for_url(re.compile(rf"/instances/{vm['id']}$"))
        expect(page.locator("#instance-host")).to_have_text(destination)  # the live part: htmx polls it
        expect(page.locator("#state")).to_contain_text("running")
        screenshots(page, "admin-migrated")

        page.get_by_role("link", name="Hosts").click()
        row = page.locator(f"#hosts tr[data-host='{destination}']")
        expect(row).to_contain_text("enabled")
        page.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name=f"Drain {destination}").click()
        try:
            report = page.locator("#drain-report")
            expect(report).to_contain_text("1 migration started")
            expect(report.get_by_role("link", name="wanderer")).to_be_visible()
            screenshots(page, "admin-hosts-drained")
            admin_api.wait_for(f"/hosts/{destination}", lambda r: r.json()["status"] == "disabled", timeout=30)
            page.goto("/admin/hosts")
            expect(row).to_contain_text("disabled")
            expect(row.get_by_role("button", name=f"Enable {destination}")).to_be_visible()
            page.goto(f"/instances/{vm['id']}")
            expect(page.locator("#instance-host")).to_have_text(source)
            expect(page.locator("#state")).to_contain_text("running")
        finally:
            admin_api.call("POST", f"/hosts/{destination}/enable", 200)
        owner.call("DELETE", f"/instances/{vm['id']}", 202)
        owner.wait_for(f"/instances/{vm['id']}", lambda r: r.status_code == 404, timeout=60)
