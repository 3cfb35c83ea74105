"""A real QEMU guest through the portal: the instance page shows its console output (the tiny
image's boot markers) and an SSH command that logs in with the key the portal generated."""
import os
import re
import shlex
import subprocess

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user
from tests.realguest.conftest import qemu_stack  # noqa: F401  (the fixture: a stack with a QEMU host)

pytestmark = pytest.mark.realguest
PASSWORD = "harbour-pebble-19"


@pytest.fixture
def stack(qemu_stack):  # noqa: F811  (the browser fixtures' stack is the QEMU one here)
    return qemu_stack


def test_the_instance_page_of_a_real_guest_shows_its_console_and_an_ssh_command_that_logs_in(
        qemu_stack, open_context, screenshots, tmp_path):  # noqa: F811
    admin = Api(qemu_stack.url).login("admin", ADMIN_PASSWORD)
    approved_user(qemu_stack.url, admin, "rita", PASSWORD)
    page = open_context().new_page()
    log_in(page, "rita", PASSWORD)

    page.goto("/keys")  # a key made by the portal, its private half downloaded once
    page.locator("#gen-name").fill("laptop")
    page.get_by_role("button", name="Generate").click()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download the private key").click()
    key_file = tmp_path / "labcloud-laptop"
    download_info.value.save_as(key_file)
    os.chmod(key_file, 0o600)

    page.goto("/instances/new")
    page.get_by_label("Name").fill("real1")
    page.get_by_label("Image").select_option(label="tiny")
    page.get_by_label("SSH key").select_option(label="laptop")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/instances/[0-9a-f-]{36}$"))
    expect(page.locator("#state .state")).to_have_text("running", timeout=240_000)
    expect(page.locator("#live")).to_contain_text("SSH answers.", timeout=240_000)
    ip = page.locator("#ip").inner_text()
    expect(page.locator("#console-output")).to_contain_text(f"labcloud: ssh ready {ip}", timeout=30_000)
    screenshots(page, "instance-real-guest")

    command = shlex.split(page.locator("#ssh-command").inner_text())
    assert command[0] == "ssh" and command[-1].startswith("root@"), command
    # As the page says: the downloaded key with -i; no prompts (a test has no terminal).
    argv = [command[0], "-i", str(key_file), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"] + command[1:] + ["hostname"]
    logged_in = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert logged_in.returncode == 0 and logged_in.stdout.strip() == "real1", logged_in.stderr

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    page.wait_for_url(re.compile(r"/$"))
    expect(page.locator("tr[data-instance=real1]")).to_have_count(0, timeout=60_000)
