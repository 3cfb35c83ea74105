"""The portal in a real browser: Debian's chromium driven by Playwright's sync API (Playwright cannot
download its own browsers here), against the whole system as processes (test hypervisor).

Screenshots of the main pages go to LABCLOUD_SCREENSHOT_DIR (`make screenshots` points it at
docs/screenshots; by default a temporary directory, so a test run leaves the checkout alone)."""
import os
import shutil
import tempfile

import pytest

from tests.conftest import GREEN
from tests.e2e.api import ADMIN_PASSWORD, Api
from tests.e2e.conftest import stack_on

from playwright.sync_api import expect, sync_playwright  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 860}
expect.set_options(timeout=30_000)


@pytest.fixture(scope="session")
def browser():
    if GREEN:  # fail loudly instead of hanging: the sync API runs asyncio in a thread eventlet patched
        pytest.fail("browser tests run with LABCLOUD_TESTS_GREEN=0 (see the Makefile's test target)")
    with sync_playwright() as playwright:
        # --no-sandbox: the tests run as root here, and chromium's sandbox refuses root.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def stack(rabbit_node, vhosts):
    with stack_on(rabbit_node, vhosts) as running:
        yield running


@pytest.fixture(scope="module")
def admin_api(stack):
    return Api(stack.url).login("admin", ADMIN_PASSWORD)


@pytest.fixture(scope="session")
def screenshots():
    target = os.environ.get("LABCLOUD_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="labcloud-shots-")
    os.makedirs(target, exist_ok=True)

    def shoot(page, name):
        page.screenshot(path=os.path.join(target, f"{name}.png"), full_page=True)
    return shoot


@pytest.fixture
def open_context(browser, stack):
    """A fresh browser context (its own cookies: another person) on the stack's portal."""
    made = []

    def new(viewport=LAPTOP):
        context = browser.new_context(base_url=stack.url, viewport=viewport, accept_downloads=True)
        context.set_default_timeout(30_000)
        made.append(context)
        return context
    yield new
    for context in made:
        context.close()


def log_in(page, username, password):
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)
