"""A student's whole journey in a real browser, and the portal's protections (CSRF, other people's
pages, keyboard use, phones)."""
import re

import pytest
from playwright.sync_api import expect

from imagebuilder.bareboot import generate_ed25519_key, public_key_line
from tests.browser.conftest import PHONE, log_in
from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user

STUDENT_PASSWORD = "violet-kettle-42"


@pytest.fixture(scope="module")
def course(admin_api):
    return admin_api.call("POST", "/projects", 201, json={"name": "os-lab", "description": "Operating systems"}).json()


def test_a_student_signs_up_is_approved_creates_an_instance_and_deletes_it(
        stack, admin_api, course, open_context, screenshots):
    student = open_context().new_page()
    student.goto("/signup")
    screenshots(student, "signup")
    student.locator("#username").fill("sam")
    student.get_by_label("E-mail").fill("sam@lab.example")
    student.get_by_label("Full name").fill("Sam Student")
    student.locator("#password").fill(STUDENT_PASSWORD)
    student.get_by_role("button", name="Sign up").click()
    expect(student.locator("#pending")).to_contain_text("waiting for an admin's approval")

    student.goto("/login")  # not before approval: the login form says why
    student.get_by_label("Username").fill("sam")
    student.get_by_label("Password").fill(STUDENT_PASSWORD)
    student.get_by_role("button", name="Log in").click()
    expect(student.locator("#form-error")).to_contain_text("awaits approval")

    # The admin, in another browser context, approves the sign-up into the course.
    admin = open_context().new_page()
    log_in(admin, "admin", ADMIN_PASSWORD)
    admin.goto("/admin/signups")
    screenshots(admin, "admin-signups")
    row = admin.locator("tr[data-user=sam]")
    row.get_by_label("Into the course").select_option(label=course["name"])
    row.get_by_role("button", name="Approve sam").click()
    expect(admin.locator("tr[data-user=sam]")).to_have_count(0)

    log_in(student, "sam", STUDENT_PASSWORD)
    # An SSH key: imported.
    student.goto("/keys")
    student.get_by_label("Name", exact=True).first.fill("laptop")
    student.get_by_label("Public key").fill(public_key_line(generate_ed25519_key()))
    student.get_by_role("button", name="Import").click()
    expect(student.locator("#keys tr[data-key=laptop]")).to_be_visible()

    # Create an instance: the course's quota left is shown before submitting.
    student.goto("/instances/new")
    expect(student.locator("#quota")).to_contain_text("instances")
    student.get_by_label("Name").fill("web-1")
    student.get_by_label("Course").select_option(label=course["name"])
    student.get_by_label("SSH key").select_option(label="laptop")
    screenshots(student, "create-instance")
    student.get_by_role("button", name="Create").click()
    student.wait_for_url(re.compile(r"/instances/[0-9a-f-]{36}$"))
    instance_url = student.url

    # It turns running on screen without a reload: count the page's navigations from here on.
    navigations = []
    student.on("framenavigated", lambda frame: frame == student.main_frame and navigations.append(frame.url))
    expect(student.locator("#state .state")).to_have_text("running")
    expect(student.locator("#ip")).to_have_text(re.compile(r"^\d+\.\d+\.\d+\.\d+$"))
    expect(student.locator("#actions")).to_contain_text("create")
    assert navigations == [], "the state changed without any reload"
    expect(student.locator("#shares")).to_contain_text("CPU weight")   # the instance's own resource shares
    expect(student.locator("#shares")).to_contain_text("vCPU")
    expect(student.locator("#console-output")).to_be_visible()
    instance_id = instance_url.rsplit("/", 1)[1]
    console = Api(stack.url).login("sam", STUDENT_PASSWORD).call("GET", f"/instances/{instance_id}/console", 200).json()
    expect(student.locator("#console-output")).to_have_text(console["output"] or "(nothing yet)")
    screenshots(student, "instance")

    # Stop, confirming the question; dismissing it first changes nothing.
    student.once("dialog", lambda dialog: dialog.dismiss())
    student.get_by_role("button", name="Stop").click()
    expect(student.locator("#state .state")).to_have_text("running")
    student.once("dialog", lambda dialog: dialog.accept())
    student.get_by_role("button", name="Stop").click()
    expect(student.locator("#state .state")).to_have_text("stopped")

    # The dashboard lists it; delete from its page, and the dashboard row goes away by itself.
    student.goto("/")
    expect(student.locator("tr[data-instance=web-1]")).to_contain_text("stopped")
    screenshots(student, "dashboard")
    student.goto(instance_url)
    student.once("dialog", lambda dialog: dialog.accept())
    student.get_by_role("button", name="Delete").click()
    student.wait_for_url(re.compile(r"/$"))
    expect(student.locator("tr[data-instance=web-1]")).to_have_count(0)
    assert student.goto(instance_url).status == 404


def test_a_generated_private_key_is_downloaded_once(stack, admin_api, open_context):
    api = approved_user(stack.url, admin_api, "gina", STUDENT_PASSWORD)
    page = open_context().new_page()
    log_in(page, api.username, STUDENT_PASSWORD)
    page.goto("/keys")
    page.locator("#gen-name").fill("lab-key")
    page.get_by_role("button", name="Generate").click()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download the private key").click()
    download = download_info.value
    assert download.suggested_filename == "labcloud-lab-key"
    with open(download.path()) as key_file:
        assert key_file.read().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    page.goto("/keys")
    expect(page.locator("#keys tr[data-key=lab-key]")).to_be_visible()
    expect(page.locator("#generated-key")).to_have_count(0)  # never shown again


def test_a_student_cannot_open_another_students_instance_by_its_url(stack, admin_api, open_context):
    owner = approved_user(stack.url, admin_api, "olga", STUDENT_PASSWORD)
    other = approved_user(stack.url, admin_api, "oscar", STUDENT_PASSWORD)
    made = owner.call("POST", "/instances", 202, json={"name": "mine", "flavor": 1, "image": 1,
                                                        "key": owner.key}).json()
    page = open_context().new_page()
    log_in(page, other.username, STUDENT_PASSWORD)
    for path in (f"/instances/{made['id']}", f"/instances/{made['id']}/console", f"/instances/{made['id']}/live"):
        response = page.goto(path)
        assert response.status == 404, path
        expect(page.locator("main")).not_to_contain_text("mine")
    # Nor act on it: a stop posted with the attacker's own valid CSRF token is refused too.
    page.goto("/")
    token = page.locator("input[name=csrf_token]").first.input_value()
    refused = page.request.post(f"/instances/{made['id']}/stop", form={"csrf_token": token}, max_redirects=0)
    assert refused.status == 404
    owner.call("DELETE", f"/instances/{made['id']}", 202)


def test_a_form_posted_without_its_csrf_token_is_refused(stack, admin_api, open_context):
    api = approved_user(stack.url, admin_api, "cora", STUDENT_PASSWORD)
    page = open_context().new_page()
    log_in(page, api.username, STUDENT_PASSWORD)
    form = {"name": "forged", "public_key": public_key_line(generate_ed25519_key())}
    for sent in (form, dict(form, csrf_token="0" * 64)):
        refused = page.request.post("/keys", form=sent, max_redirects=0)  # the session cookie goes with it
        assert refused.status == 403, sent.keys()
        assert "did not come from this site" in refused.text()
    assert [k["name"] for k in api.call("GET", "/keys", 200).json()] == ["k"], "nothing was added"
    # The same form through the page (with its token) works.
    page.goto("/keys")
    page.get_by_label("Name", exact=True).first.fill("real")
    page.get_by_label("Public key").fill(form["public_key"])
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#keys tr[data-key=real]")).to_be_visible()


def test_errors_show_next_to_the_field_that_caused_them(stack, admin_api, open_context):
    api = approved_user(stack.url, admin_api, "erin", STUDENT_PASSWORD)
    page = open_context().new_page()
    log_in(page, api.username, STUDENT_PASSWORD)
    page.goto("/instances/new")
    page.get_by_label("Name").fill("Not A Valid Name!")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#name")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#name-error")).to_be_visible()
    expect(page.locator("#flavor")).not_to_have_attribute("aria-invalid", "true")


def test_the_login_form_works_from_the_keyboard_alone(stack, admin_api, open_context):
    api = approved_user(stack.url, admin_api, "kai", STUDENT_PASSWORD)
    page = open_context().new_page()
    page.goto("/login")
    page.keyboard.type(api.username)  # the username field has the focus on arrival
    page.keyboard.press("Tab")
    page.keyboard.type(STUDENT_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name="My instances")).to_be_visible()
    page.keyboard.press("Tab")  # the first stop is the skip link, which leads to the content
    expect(page.locator(":focus")).to_have_text("Skip to content")


@pytest.mark.parametrize("path", ["/", "/instances/new", "/keys", "/usage", "/account"])
def test_pages_fit_a_phone_screen(stack, admin_api, open_context, screenshots, path):
    api = approved_user(stack.url, admin_api, f"phone{abs(hash(path)) % 10000}", STUDENT_PASSWORD)
    page = open_context(PHONE).new_page()
    log_in(page, api.username, STUDENT_PASSWORD)
    page.goto(path)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{path} scrolls sideways by {overflow} px on a phone"
    if path == "/":
        screenshots(page, "phone-dashboard")


def test_a_student_turns_instance_mail_off_on_the_account_page(stack, admin_api, open_context, screenshots):
    api = approved_user(stack.url, admin_api, "mia", STUDENT_PASSWORD)
    page = open_context().new_page()
    log_in(page, api.username, STUDENT_PASSWORD)
    page.goto("/account")
    def box(kind):
        return page.get_by_role("checkbox", name=re.compile(f"^{kind}:"))
    security, instance = box("Security"), box("Instance")
    expect(security).to_be_checked()
    expect(security).to_be_disabled()  # always sent: nothing to untick
    expect(instance).to_be_checked()
    instance.uncheck()
    page.get_by_role("button", name="Save my notifications").click()
    page.wait_for_url(re.compile(r"/account#notifications$"))
    expect(box("Instance")).not_to_be_checked()
    expect(box("Account")).to_be_checked()
    screenshots(page, "account-notifications")
    kinds = {k["kind"]: k["enabled"] for k in api.call("GET", "/users/me/notifications", 200).json()}
    assert kinds == {"account": True, "security": True, "instance": False, "alarm": True}
