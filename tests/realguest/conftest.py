import os
import tempfile
import time

import libvirt
import pytest

from labcloud.rabbit import free_port
from labcloud.stack import Stack
from tests.conftest import DEB_CACHE
from tests.e2e.api import ADMIN_PASSWORD, Api

# Debian packages the image builder downloads: kept between test runs on this machine.
IMAGE_CACHE = DEB_CACHE
HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="package")
def qemu_stack(rabbit_node, vhosts, image_builds):
    """The whole system with a real hypervisor host: private libvirtd in a network namespace,
    QEMU (TCG) guests booted from the tiny image. One for the package's modules (a start costs
    half a minute): each finds no guest on it (what the previous one deleted is gone, checked below),
    and they run one after another, after the package's modules that do not use it
    (pytest_collection_modifyitems below).
    The tiny image is the session's build (tests/conftest.py ImageBuilds), copied into the data
    dir: the stack's own build() finds it up to date."""
    data_dir = tempfile.mkdtemp(prefix="labcloud-real-")
    image_builds.copy_to(data_dir)
    with Stack(data_dir, port=free_port(), amqp_uri=rabbit_node.amqp_uri_for(vhosts.take()),
               hypervisor="qemu", admin_password=ADMIN_PASSWORD, image_cache_dir=IMAGE_CACHE,
               extra_env={"STATS_INTERVAL": "2", "HEARTBEAT_INTERVAL": "1", "METRICS_STEP": "2"},
               quiet=True) as running:
        yield running


def uses_qemu_stack(item):
    return "qemu_stack" in item.fixturenames


def pytest_collection_modifyitems(items):
    """This package's modules on the shared qemu_stack run last in it, so the stack runs only while
    they do (not beside test_make_run's own runs of the whole system and their timing bounds).
    Order is kept otherwise."""
    slots = [n for n, item in enumerate(items) if str(item.path.parent) == HERE]
    ours = [items[n] for n in slots]
    reordered = [i for i in ours if not uses_qemu_stack(i)] + [i for i in ours if uses_qemu_stack(i)]
    for n, item in zip(slots, reordered):
        items[n] = item


GUEST_GONE_S = 120  # for the deletes the previous module made at its end (a fixture's teardown)
_previous_module = []  # the last module that used the shared stack


def domains_on(stack):
    """{host: [domain names]} of the hosts that have any."""
    left = {}
    for name, host in stack.qemu_hosts.items():
        conn = libvirt.open(host.uri)
        try:
            domains = [d.name() for d in conn.listAllDomains()]
        finally:
            conn.close()
        if domains:
            left[name] = domains
    return left


def wait_for_no_domain(stack):
    """What is left once the hosts have no domain or GUEST_GONE_S passed."""
    deadline = time.monotonic() + GUEST_GONE_S
    while True:
        left = domains_on(stack)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def delete_instances_of(stack, left):
    """Deletes, as the admin, the instances whose domains are left (domain `lc-<instance id>`)."""
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    for domains in left.values():
        for domain in domains:
            if domain.startswith("lc-"):
                admin.call("DELETE", f"/instances/{domain[3:]}")


@pytest.fixture(scope="module", autouse=True)
def starts_with_no_guest_on_the_shared_stack(request):
    """Each module on the shared qemu_stack starts with no domain (running or defined) on its
    hosts, as it would on a stack of its own (test_real_guest.py, for one, checks that the host has
    no domain at all after its delete): what the previous module deleted is gone first, and what it
    left behind fails this module's setup, naming it.
    A module whose test failed may leave its guest behind (the test stopped before its delete):
    that failure is already reported, so its guests are deleted here as the admin, and the next
    modules do not fail for it. A module whose tests all passed gets no such help."""
    module_items = [i for i in request.session.items if i.getparent(pytest.Module) is request.node]
    if not any(uses_qemu_stack(i) for i in module_items):
        yield
        return
    stack = request.getfixturevalue("qemu_stack")
    left = wait_for_no_domain(stack)
    previous = _previous_module[-1] if _previous_module else "the stack's start"
    assert not left, f"{previous} left domains on the shared QEMU stack: {left}"
    _previous_module.append(request.node.nodeid)
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before:
        delete_instances_of(stack, domains_on(stack))  # the next module's setup waits for them to go


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test on the shared stack reports the services' last warnings and errors with it:
    CI prints only the failure, and a real guest's failure is often decided in a service's log."""
    outcome = yield
    report = outcome.get_result()
    stack = item.funcargs.get("qemu_stack") if report.failed else None
    if stack is not None:
        report.sections.append(("labcloud services' last warnings and errors", service_problems(stack.data_dir)))


def service_problems(data_dir, lines=40):
    logs = os.path.join(data_dir, "logs")
    found = []
    for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
        with open(os.path.join(logs, name), errors="replace") as f:
            found += [f"{name}: {line.rstrip()}" for line in f
                      if " WARNING " in line or " ERROR " in line or line.startswith("Traceback")]
    return "\n".join(found[-lines:]) or "(none)"
