"""The instance page's Volumes panel (gateway/portal/views/volumes.py) through its forms, as a
browser without JavaScript: create-and-attach (refusals next to the name and size inputs), the
attached volume's row with its device, Detach, the course's spare volumes with Attach and Delete,
a delete of an attached volume refused (409) on the page, and the panel's forms refused to a
classmate (404, as the instance page itself)."""
import uuid

import pytest

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user, running_instances
from tests.e2e.portal import Portal, field_error

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def owner(stack):
    admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
    return approved_user(stack.url, admin, f"pvol{uuid.uuid4().hex[:6]}")


def rows(page, caption=None):
    section = page.by_id("volumes")
    tables = section.find_all("table")
    return [[td.text() for td in tr.find_all("td")] for table in tables for tr in table.find_all("tr")
            if tr.find("td") is not None and (caption is None or (table.find("caption") and
                                                                   caption in table.find("caption").text()))]


def test_the_volumes_panel_creates_attaches_detaches_and_deletes(stack, owner):
    [vm] = running_instances(owner, 1, prefix="pvol")
    portal = Portal(stack.url, owner.token)
    path = f"/instances/{vm}"
    _resp, page = portal.get(path)
    assert "No data volume is attached." in page.by_id("volumes").text()

    for sent, field in (({"name": "", "size_gib": "1"}, "name"), ({"name": "ok", "size_gib": "0"}, "size_gib")):
        resp, refused = portal.submit(page, f"{path}/volumes", sent)
        assert resp.status_code == 400, resp.text[:500]
        assert field_error(refused, field)
    resp, _ = portal.submit(page, f"{path}/volumes", {"name": "scratch", "size_gib": "2"})
    assert resp.status_code == 303 and resp.headers["Location"] == path
    _resp, page = portal.get(path)
    [row] = rows(page)
    assert row[:4] == ["/dev/vdb", "scratch", "2 GiB", "attached"]
    [volume] = owner.call("GET", "/volumes", 200, params={"instance": vm}).json()

    # Delete is offered only for volumes not attached; sent anyway, the service's 409 is on the page.
    resp, refused = portal.post(f"{path}/volumes/{volume['id']}/delete", page)
    assert resp.status_code == 409 and "detach it first" in refused.text()
    resp, _ = portal.submit(page, f"{path}/volumes/{volume['id']}/detach")
    assert resp.status_code == 303
    _resp, page = portal.get(path)
    assert rows(page, "not attached") == [["scratch", "2 GiB", volume["host"], "available", "Delete"]]
    options = [(o.get("value"), o.text()) for o in page.find("select", id="volume").find_all("option")]
    assert (str(volume["id"]), "scratch (2 GiB)") in options

    resp, _ = portal.submit(page, f"{path}/volumes/attach", {"volume": str(volume["id"])})
    assert resp.status_code == 303
    assert owner.call("GET", f"/volumes/{volume['id']}", 200).json()["instance"] == vm
    resp, refused = portal.submit(page, f"{path}/volumes/attach", {"volume": ""})
    assert resp.status_code == 400 and field_error(refused, "volume") == "choose a volume"

    # A classmate meets the page's 404 on every form of the panel; nothing changes.
    classmate = approved_user(stack.url, Api(stack.url).login("admin", ADMIN_PASSWORD),
                              f"pvc{uuid.uuid4().hex[:6]}", project=owner.project)
    theirs = Portal(stack.url, classmate.token)
    _resp, own_page = theirs.get("/")
    for action in (f"{path}/volumes/{volume['id']}/detach", f"{path}/volumes/{volume['id']}/delete"):
        resp, _ = theirs.post(action, own_page)
        assert resp.status_code == 404, (action, resp.status_code)
    assert owner.call("GET", f"/volumes/{volume['id']}", 200).json()["attach_state"] == "attached"

    _resp, page = portal.get(path)
    portal.submit(page, f"{path}/volumes/{volume['id']}/detach", expect=303)
    _resp, page = portal.get(path)
    portal.submit(page, f"{path}/volumes/{volume['id']}/delete", expect=303)
    owner.call("GET", f"/volumes/{volume['id']}", 404)
    _resp, page = portal.get(path)
    assert rows(page) == []
