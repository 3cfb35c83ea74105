"""Migration and drain through the portal's forms (gateway/portal/views/instances.py, admin.py), over
HTTP as a browser without JavaScript: the instance page's Migrate form is an admin's (the policy
says), its refusals land next to the host select with the service's status, a migration moves the
instance to the host picked, and the Drain button of /admin/hosts and of a host's page shows the
drain's answer. On the stack of two hosts the migration tests share (tests/e2e/conftest.py); the
browser test of the same path: tests/browser/test_teacher_and_admin.py."""
import pytest

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user, tiny_image
from tests.e2e.portal import Portal, unique

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(two_host_stack):
    return two_host_stack


@pytest.fixture(scope="module")
def trip(stack):
    """(admin API, admin portal, the owner, the two hosts, the owner's running instance)."""
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    owner = approved_user(stack.url, admin, unique("pmig"))
    flavor = min(owner.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    image = tiny_image(owner)
    made = owner.call("POST", "/instances", 202, json={"name": unique("trip-"), "flavor": flavor["id"],
                                                      "image": image["id"], "key": owner.key}).json()
    running = owner.wait_for(f"/instances/{made['id']}", lambda r: r.json()["state"] in ("running", "error"),
                             timeout=60).json()
    assert running["state"] == "running", running
    yield admin, Portal(stack.url).login("admin", ADMIN_PASSWORD), owner, list(stack.hosts), running
    owner.call("DELETE", f"/instances/{made['id']}")
    owner.wait_for(f"/instances/{made['id']}", lambda r: r.status_code == 404, timeout=60)


def test_only_an_admin_gets_the_migrate_form_and_its_refusals_sit_next_to_the_host(trip):
    admin, portal, owner, hosts, vm = trip
    path = f"/instances/{vm['id']}"
    _resp, theirs = Portal(portal.base, owner.token).get(path)
    assert theirs.find("form", id="migrate-form") is None  # the owner may not migrate (instance:migrate)
    _resp, page = portal.get(path)
    form = page.find("form", id="migrate-form")
    assert form is not None and form.get("action") == f"{path}/migrate"
    options = [(o.get("value"), o.text()) for o in form.find("select", id="host").find_all("option")]
    assert options[0] == ("", "Let the scheduler choose")
    other = next(h for h in hosts if h != vm["host"])
    offered = [value for value, _text in options[1:]]
    assert other in offered and vm["host"] not in offered  # up and enabled, not its own
    # Its own host: the service's 400 naming `host`, next to the select, the form open.
    resp, page = portal.submit(page, f"{path}/migrate", {"host": vm["host"]}, expect=400)
    assert page.find("select", id="host").get("aria-invalid") == "true"
    assert page.find("small", id="host-error").text() == "the instance's own host"
    assert page.find("form", id="migrate-form").parent.get("open") is not None
    assert page.find("details", open="") is page.find("form", id="migrate-form").parent  # only that form open
    resp, page = portal.submit(page, f"{path}/migrate", {"host": "no-such-host"}, expect=404)
    assert page.find("small", id="host-error").text() == "unknown host"
    assert page.find("p", id="form-error") is not None
    # A disabled destination: 409 naming it.
    admin.call("POST", f"/hosts/{other}/disable", 200)
    try:
        resp, page = portal.submit(page, f"{path}/migrate", {"host": other}, expect=409)
        assert page.find("small", id="host-error").text() == "is disabled"
        assert other not in [o.get("value") for o in page.find("select", id="host").find_all("option")]
    finally:
        admin.call("POST", f"/hosts/{other}/enable", 200)
    assert owner.call("GET", path, 200).json()["host"] == vm["host"]


def test_the_form_moves_the_instance_and_the_drain_button_sends_it_back(trip):
    admin, portal, owner, hosts, vm = trip
    path = f"/instances/{vm['id']}"
    source = owner.call("GET", path, 200).json()["host"]
    destination = next(h for h in hosts if h != source)
    _resp, page = portal.get(path)
    resp, _page = portal.submit(page, f"{path}/migrate", {"host": destination}, expect=303)
    assert resp.headers["Location"] == path
    moved = owner.wait_for(path, lambda r: r.json()["state"] != "migrating", timeout=60).json()
    assert (moved["state"], moved["host"]) == ("running", destination), moved
    _resp, live = portal.get(f"{path}/live")
    assert live.find("dd", id="instance-host").text() == destination and live.find(id="migrating-to") is None

    # The hosts page: the destination's Drain button (confirmed in the browser) answers with the report.
    _resp, doc = portal.get("/admin/hosts")
    row = doc.find("tr", data_host=destination)
    drain = row.find("form", action=f"/admin/hosts/{destination}/drain")
    assert drain is not None and drain.get("data-confirm", "").startswith(f"Drain {destination}?")
    try:
        resp, page = portal.submit(row, f"/admin/hosts/{destination}/drain", expect=200)
        report = page.find("section", id="drain-report")
        assert report.find("span", id="drain-started").text() == "1 migration started"
        assert report.find("a", href=path).text() == vm["name"]
        assert page.find("table", id="drain-refused") is None
        admin.wait_for(f"/hosts/{destination}", lambda r: r.json()["status"] == "disabled", timeout=60)
        back = owner.call("GET", path, 200).json()
        assert (back["state"], back["host"]) == ("running", source), back
        # From the host's own page: its answer there (nothing left to move), and back to that page.
        _resp, host_page = portal.get(f"/admin/hosts/{destination}")
        drain = host_page.find("form", action=f"/admin/hosts/{destination}/drain")
        assert drain.find("input", name="back").get("value") == "host"
        resp, page = portal.submit(host_page, f"/admin/hosts/{destination}/drain", {"back": "host"}, expect=200)
        assert page.find("dl", id="host") is not None
        assert page.find("span", id="drain-started").text() == "0 migrations started"
        resp, _page = portal.submit(page, f"/admin/hosts/{destination}/enable", {"back": "host"}, expect=303)
        assert resp.headers["Location"] == f"/admin/hosts/{destination}"
        assert admin.call("GET", f"/hosts/{destination}", 200).json()["status"] == "enabled"
    finally:
        admin.call("POST", f"/hosts/{destination}/enable", 200)
    # A host that does not exist: the hosts page with the service's 404.
    resp, page = portal.post("/admin/hosts/no-such-host/drain", doc, expect=404)
    assert page.find("p", id="form-error").text() == "no host no-such-host"
