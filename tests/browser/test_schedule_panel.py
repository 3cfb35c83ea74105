"""A student schedules actions on their instance from its page in a real browser: a bad cron
expression is shown next to its field, a stop a few seconds ahead stops the instance (the page's
own state turns `stopped`), the panel shows the run's outcome, and a schedule is deleted after
confirming the question."""
import datetime as dt
import re

from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.e2e.api import approved_user, running_instances

PASSWORD = "maple-lantern-17"


def test_a_student_schedules_a_stop_from_the_instance_page(stack, admin_api, open_context, screenshots):
    student = approved_user(stack.url, admin_api, "tess", PASSWORD)
    [vm] = running_instances(student, 1, prefix="nightly")
    page = open_context().new_page()
    log_in(page, "tess", PASSWORD)
    page.goto(f"/instances/{vm}")
    panel = page.locator("#schedules")
    expect(panel).to_contain_text("No scheduled actions")

    panel.get_by_text("Add a scheduled action").click()
    panel.locator("#schedule-action").select_option("stop")
    panel.locator("#schedule-cron").fill("0 8 * *")
    panel.get_by_role("button", name="Add scheduled action").click()
    expect(page.locator("#schedule-cron-error")).to_contain_text("five cron fields")
    expect(page.locator("#schedule-cron")).to_have_attribute("aria-invalid", "true")

    soon = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=3)).isoformat(timespec="seconds")
    page.locator("#schedule-cron").fill("")
    page.locator("#schedule-at").fill(soon)
    page.locator("#schedule-name").fill("stop-soon")
    page.get_by_role("button", name="Add scheduled action").click()
    page.wait_for_url(re.compile(rf"/instances/{vm}#schedules$"))
    expect(page.locator("#state .state")).to_have_text("stopped", timeout=60_000)
    page.reload()
    row = page.locator("#schedule-list tr", has_text="stop-soon")
    expect(row.locator("mark[data-outcome]")).to_have_text("ok")
    expect(row).to_contain_text("done")
    screenshots(page, "instance-schedules")

    page.locator("#schedules").get_by_text("Add a scheduled action").click()
    page.locator("#schedule-action").select_option("start")
    page.locator("#schedule-cron").fill("0 8 * * 1-5")
    page.locator("#schedule-timezone").fill("Europe/Paris")
    page.locator("#schedule-name").fill("mornings")
    page.get_by_role("button", name="Add scheduled action").click()
    mornings = page.locator("#schedule-list tr", has_text="mornings")
    expect(mornings).to_contain_text("0 8 * * 1-5")
    expect(mornings).to_contain_text("Europe/Paris")
    page.once("dialog", lambda dialog: dialog.accept())
    mornings.get_by_role("button", name="Delete schedule mornings").click()
    expect(page.locator("#schedule-list tr", has_text="mornings")).to_have_count(0)
    assert [s["name"] for s in student.call("GET", "/schedules", 200).json()] == ["stop-soon"]
