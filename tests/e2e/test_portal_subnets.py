"""The subnets' admin pages (/admin/subnets, a subnet's page, its MAC list) over HTTP against the
running system, as a browser without JavaScript uses them: every form sent with its page's CSRF
token, the HTML of the answer read. The network service decides; the pages show what it answers
and put its refusals (400 field errors, 409) next to the input or button they are about."""
import random

import pytest

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user
from tests.e2e.portal import Portal, field_error, unique

pytestmark = pytest.mark.e2e


def see_other(resp, path):
    assert resp.status_code == 303, resp.text[:3000]
    assert resp.headers["Location"] == path


def a_cidr():
    """A /24 of 10.150.0.0 to 10.199.255.255: this file's (other files create subnets elsewhere)."""
    return f"10.{random.randrange(150, 200)}.{random.randrange(256)}.0/24"


@pytest.fixture(scope="module")
def admin(stack):
    return Api(stack.url).login("admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def admin_portal(stack, admin):
    return Portal(stack.url).login("admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def student(stack, admin):
    return approved_user(stack.url, admin, unique("snet"))


def subnet_named(admin, name):
    return next((s for s in admin.call("GET", "/subnets", 200).json() if s["name"] == name), None)


def test_a_subnet_is_created_reserved_in_listed_by_mac_and_deleted_through_the_forms(stack, admin, admin_portal):
    _resp, doc = admin_portal.get("/admin/subnets")
    default = next(s for s in admin.call("GET", "/subnets", 200).json() if s["is_default"])
    row = doc.find("tr", data_subnet=default["name"])
    assert row is not None and default["cidr"] in row.text() and "default" in row.text()
    assert doc.find("a", href="/admin/subnets") is not None  # in the admin menu

    # A public range: refused naming the CIDR (400), the form keeps what was sent.
    name, cidr = unique("lab-"), a_cidr()
    sent = {"name": name, "cidr": "8.8.8.0/24", "dns_servers": "1.1.1.1, 9.9.9.9", "mac_policy": "random",
            "is_default": "true"}
    resp, page = admin_portal.submit(doc, "/admin/subnets", sent)
    assert resp.status_code == 400, resp.text[:2000]
    assert "private" in field_error(page, "cidr")
    assert page.by_id("name").get("value") == name and page.by_id("dns_servers").get("value") == "1.1.1.1, 9.9.9.9"
    assert page.find("option", value="random").get("selected") is not None
    assert page.by_id("is_default").get("checked") is not None
    assert page.by_id("name").get("aria-invalid") is None  # only the field refused is marked
    # A DNS server that is no address: refused next to the DNS input.
    sent.pop("is_default")  # from here on a form that slipped through would not take the default's place
    resp, page = admin_portal.submit(page, "/admin/subnets", dict(sent, cidr=cidr, dns_servers="1.1.1.1, 9.9.9.999"))
    assert resp.status_code == 400 and field_error(page, "dns_servers")
    # Overlapping the default subnet: the service's 409, next to the CIDR.
    overlapping = default["cidr"].rsplit("/", 1)[0] + "/24"
    resp, page = admin_portal.submit(page, "/admin/subnets", dict(sent, cidr=overlapping, dns_servers=""))
    assert resp.status_code == 409 and field_error(page, "cidr") == "overlaps"
    assert default["name"] in page.by_id("form-error").text()
    assert subnet_named(admin, name) is None

    # Valid: the DNS servers (comma-separated) and reserved addresses (one per line) become lists.
    base = cidr.removesuffix(".0/24")
    resp, _page = admin_portal.submit(page, "/admin/subnets", {
        "name": name, "cidr": cidr, "gateway": f"{base}.1", "allocation_start": f"{base}.20",
        "allocation_end": f"{base}.30", "dns_servers": "1.1.1.1, 9.9.9.9", "reserved": f"{base}.21\n{base}.22",
        "mac_policy": "orca"})
    see_other(resp, "/admin/subnets")
    made = subnet_named(admin, name)
    assert made is not None and not made["is_default"]
    assert (made["cidr"], made["gateway"], made["allocation_start"], made["allocation_end"], made["mac_policy"]) == (
        cidr, f"{base}.1", f"{base}.20", f"{base}.30", "orca")
    assert made["dns_servers"] == ["1.1.1.1", "9.9.9.9"] and made["reserved"] == [f"{base}.21", f"{base}.22"]
    assert (made["allocated"], made["free"]) == (0, 9)
    _resp, doc = admin_portal.get("/admin/subnets")
    row = doc.find("tr", data_subnet=name)
    assert row is not None and f"{base}.20 – {base}.30" in row.text() and "0 / 9" in row.text()
    assert row.find("a", href=f"/admin/subnets/{made['id']}") is not None

    # The same name again: 409 next to the name.
    resp, page = admin_portal.submit(doc, "/admin/subnets", {"name": name, "cidr": a_cidr()})
    assert resp.status_code == 409 and field_error(page, "name") == "already exists"

    # Its page: the facts, the reserved addresses with a Release button each.
    path = f"/admin/subnets/{made['id']}"
    _resp, page = admin_portal.get(path)
    facts = page.by_id("subnet").text()
    assert cidr in facts and "1.1.1.1, 9.9.9.9" in facts and "orca" in facts
    for ip in (f"{base}.21", f"{base}.22"):
        assert page.find("tr", data_ip=ip).find("button", aria_label=f"Release {ip}") is not None
    assert page.find("a", href=f"{path}/macs") is not None

    # Reserve: an address outside the subnet is refused next to the address field (400) ...
    resp, refused = admin_portal.submit(page, f"{path}/reserve", {"ip": "10.1.2.3", "note": "printer"})
    assert resp.status_code == 400 and "not a host address" in field_error(refused, "reserve-ip")
    assert refused.by_id("reserve-note").get("value") == "printer"
    # ... one of it is reserved.
    resp, _page = admin_portal.submit(refused, f"{path}/reserve", {"ip": f"{base}.25", "note": "printer"})
    see_other(resp, path)
    assert admin.call("GET", f"/subnets/{made['id']}", 200).json()["reserved"] == [
        f"{base}.21", f"{base}.22", f"{base}.25"]
    _resp, page = admin_portal.get(path)
    assert page.find("tr", data_ip=f"{base}.25") is not None

    # Release: guests may get .21 again.
    resp, _page = admin_portal.submit(page, f"{path}/reserved/{base}.21/release")
    see_other(resp, path)
    now = admin.call("GET", f"/subnets/{made['id']}", 200).json()
    assert now["reserved"] == [f"{base}.22", f"{base}.25"] and now["free"] == 9
    _resp, page = admin_portal.get(path)
    assert page.find("tr", data_ip=f"{base}.21") is None

    # The MAC list: every address guests can get (the range without the reserved), with its MAC.
    _resp, macs = admin_portal.get(f"{path}/macs")
    rows = macs.by_id("macs").find("tbody").find_all("tr")
    listed = [tuple(cell.text() for cell in r.find_all("td")) for r in rows]
    expected = [(e["ip"], e["mac"]) for e in admin.call("GET", f"/subnets/{made['id']}/macs", 200).json()]
    assert listed == expected and len(listed) == 9
    octets = [int(o) for o in base.split(".")]
    assert (f"{base}.20", "aa:00:" + ":".join(f"{o:02x}" for o in octets + [20])) in listed
    assert not {f"{base}.22", f"{base}.25"} & {ip for ip, _mac in listed}

    # Delete: asks first, then the subnet is gone.
    _resp, page = admin_portal.get(path)
    form = page.find("form", action=f"{path}/delete")
    assert form.get("data-confirm") and name in form.get("data-confirm")
    resp, _page = admin_portal.submit(page, f"{path}/delete")
    see_other(resp, "/admin/subnets")
    assert subnet_named(admin, name) is None
    admin_portal.get(path, expect=404)


def test_a_random_mac_subnet_has_no_mac_list_and_the_default_is_not_deleted(stack, admin, admin_portal):
    made = admin.call("POST", "/subnets", 201, json={"name": unique("rnd-"), "cidr": a_cidr(),
                                                     "mac_policy": "random"}).json()
    resp, page = admin_portal.get(f"/admin/subnets/{made['id']}/macs", expect=409)
    assert "random MACs" in page.by_id("form-error").text() and page.by_id("macs") is None
    admin.call("DELETE", f"/subnets/{made['id']}", 200)

    default = next(s for s in admin.call("GET", "/subnets", 200).json() if s["is_default"])
    path = f"/admin/subnets/{default['id']}"
    _resp, page = admin_portal.get(path)
    resp, refused = admin_portal.submit(page, f"{path}/delete")
    assert resp.status_code == 409
    assert "default" in refused.by_id("delete-error").text()  # next to the Delete button
    assert admin.call("GET", f"/subnets/{default['id']}", 200).json()["is_default"]


def test_a_student_is_refused_on_every_subnet_page_and_form(stack, admin, student):
    cidr = a_cidr()
    base = cidr.removesuffix(".0/24")
    made = admin.call("POST", "/subnets", 201, json={"name": unique("st-"), "cidr": cidr,
                                                     "reserved": [f"{base}.10"]}).json()
    theirs = Portal(stack.url)
    theirs.login(student.username, student.password)
    _resp, home = theirs.get("/")
    assert home.find("a", href="/admin/subnets") is None  # no menu entry
    path = f"/admin/subnets/{made['id']}"
    for page in ("/admin/subnets", path, f"{path}/macs"):
        resp, _doc = theirs.get(page, expect=403)
        assert cidr not in resp.text
    forms = {"/admin/subnets": {"name": unique("no-"), "cidr": a_cidr()},
             f"{path}/reserve": {"ip": f"{base}.11"},
             f"{path}/reserved/{base}.10/release": {},
             f"{path}/delete": {}}
    for action, data in forms.items():
        resp, _doc = theirs.post(action, home, data)
        assert resp.status_code == 403, f"POST {action} as a student: {resp.status_code}"
    now = admin.call("GET", f"/subnets/{made['id']}", 200).json()
    assert now["reserved"] == [f"{base}.10"]
    assert subnet_named(admin, forms["/admin/subnets"]["name"]) is None
    admin.call("DELETE", f"/subnets/{made['id']}", 200)


def test_a_routed_subnet_is_made_through_the_form_and_shows_its_host(stack, admin, admin_portal):
    _resp, doc = admin_portal.get("/admin/subnets")
    assert [o.get("value") for o in doc.by_id("mode").find_all("option")] == ["bridged", "routed"]
    name, cidr = unique("routed-"), a_cidr()
    # Routed without a host: 400 next to the host field, the form keeps the mode chosen.
    resp, page = admin_portal.submit(doc, "/admin/subnets", {"name": name, "cidr": cidr, "mode": "routed"})
    assert resp.status_code == 400 and "required" in field_error(page, "host")
    assert page.find("option", value="routed").get("selected") is not None
    resp, _page = admin_portal.submit(page, "/admin/subnets", {"name": name, "cidr": cidr, "mode": "routed",
                                                               "host": "hx1"})
    see_other(resp, "/admin/subnets")
    made = subnet_named(admin, name)
    assert (made["mode"], made["host"]) == ("routed", "hx1")
    _resp, doc = admin_portal.get("/admin/subnets")
    assert "routed to hx1" in doc.find("tr", data_subnet=name).text()
    default = next(s for s in admin.call("GET", "/subnets", 200).json() if s["is_default"])
    assert "bridged" in doc.find("tr", data_subnet=default["name"]).text()
    _resp, page = admin_portal.get(f"/admin/subnets/{made['id']}")
    assert "routed to host hx1" in page.by_id("subnet").text()
    admin.call("DELETE", f"/subnets/{made['id']}", 200)
