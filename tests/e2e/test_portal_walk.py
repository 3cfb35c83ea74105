"""The portal's authorisation walk: every page of the portal's registry (so a new page cannot be
forgotten: one without a row below fails), every method, called with each role's session cookie
and a valid CSRF token, on the owner's resources. Anonymous callers are sent to the login page;
the others get what the services decide (a 404 page for what they may not see, a 403 page for
what they see but may not do), and the owner's things are unchanged afterwards (checked by
test_route_walk.test_the_owners_things_are_untouched_after_the_walk on the same world)."""
import re

import pytest

from gateway.portal.registry import portal
from imagebuilder.bareboot import generate_ed25519_key, public_key_line
from tests.e2e.portal import Portal
from tests.e2e.walk_world import (AUTHORISED, ROLES, codes, csv_rows, current_cpu_weight, current_flavor,
                                   fresh_alarm, fresh_for, fresh_schedule, host_of, owners_alarm, owners_schedule,
                                   own_key, shared, unique)

LOGIN, SEE_OTHER = 302, 303
# The usual answers: a page anyone logged in sees; one about the owner's instance; a course page
# (project A: the outsider cannot see it, its members may not manage it); an admin page.
ANYONE = codes(LOGIN, 200, 200, 200, 200, 200)
OWNERS = codes(LOGIN, 404, 404, 200, 200, 200)
MANAGERS = codes(LOGIN, 404, 403, 403, 200, 200)
ADMINS = codes(LOGIN, 403, 403, 403, 403, 200)


def form(make):
    return lambda world, role: {"data": make(world)}


# endpoint -> {method: (statuses for anon, outsider, peer, owner, manager, admin; how to call)}
TABLE = {
    # -- account --
    "login": {"GET": (codes(200, 200, 200, 200, 200, 200), shared),
              "POST": (codes(401, 401, 401, 401, 401, 401), form(lambda w: {
                  "username": w.owner.username, "password": "not the password"}))},
    # Logging out ends the session: each role logs out a fresh session of its own.
    "logout": {"POST": (codes(LOGIN, SEE_OTHER, SEE_OTHER, SEE_OTHER, SEE_OTHER, SEE_OTHER),
                        lambda w, r: {} if r == "anon" else {"session_of": w.fresh_login(w.session(r))})},
    "signup": {"GET": (codes(200, 200, 200, 200, 200, 200), shared),
               "POST": (codes(200, 200, 200, 200, 200, 200), form(lambda w: (lambda n: {
                   "username": n, "email": f"{n}@lab.example", "password": "a good passphrase"})(unique("s"))))},
    "set_password": {"GET": (codes(200, 200, 200, 200, 200, 200), shared),
                     "POST": (codes(400, 400, 400, 400, 400, 400), form(lambda w: {
                         "token": "x" * 43, "password": "a good passphrase"}))},
    # The page always changes the caller's own password; a wrong current one is refused (400 naming it).
    "account": {"GET": (ANYONE, shared),
                "POST": (codes(LOGIN, 400, 400, 400, 400, 400), form(lambda w: {
                    "current_password": "not the password", "password": "another passphrase"}))},
    # Each role's own notification preferences: account and instance mail stay on.
    "account_notifications": {"POST": (codes(LOGIN, SEE_OTHER, SEE_OTHER, SEE_OTHER, SEE_OTHER, SEE_OTHER),
                                       form(lambda w: {"account": "true", "instance": "true"}))},
    # -- instances --
    "dashboard": {"GET": (ANYONE, shared)},
    "instance_rows": {"GET": (ANYONE, shared)},
    "usage": {"GET": (ANYONE, shared)},
    "usage_fragment": {"GET": (codes(LOGIN, 404, 200, 200, 200, 200),
                               lambda w, r: {"query": {"project": w.project_a["id"]}})},
    "new_instance": {"GET": (ANYONE, shared),
                     "POST": (codes(LOGIN, 403, SEE_OTHER, SEE_OTHER, SEE_OTHER, SEE_OTHER),
                              lambda w, r: {"data": dict(w.create_body, name=unique("p-"), key=own_key(w, r))})},
    "show_instance": {"GET": (OWNERS, shared)},
    "instance_live": {"GET": (OWNERS, shared)},
    "instance_console": {"GET": (OWNERS, shared)},
    "instance_graph": {"GET": (OWNERS, lambda w, r: {"metric": "cpu"})},
    # Starting a running instance: allowed but it is running (409); the others never learn that.
    "power_instance": {"POST": (codes(LOGIN, 404, 404, 409, 409, 409), lambda w, r: {"action": "start"})},
    # The instance's own CPU weight again: allowed changes change nothing (the owner's things stay).
    "set_resources": {"POST": (codes(LOGIN, 404, 404, SEE_OTHER, 403, SEE_OTHER),
                               form(lambda w: {"cpu_weight": current_cpu_weight(w)}))},
    # Its own flavor again: a resize that changes nothing.
    "resize_instance": {"POST": (codes(LOGIN, 404, 404, SEE_OTHER, 403, SEE_OTHER),
                                 form(lambda w: {"flavor": current_flavor(w)}))},
    # Admins only: its own host is refused naming `host`, on the instance page (400); nothing moves.
    "migrate_instance": {"POST": (codes(LOGIN, 404, 404, 403, 403, 400), form(lambda w: {"host": host_of(w)}))},
    "delete_instance": {"POST": (codes(LOGIN, 404, 404, SEE_OTHER, SEE_OTHER, SEE_OTHER),
                                 fresh_for(AUTHORISED, lambda w: {"instance_id": w.fresh_instance()}))},
    # The instance page's Volumes panel: the refused forms aim at the owner's instance and volume,
    # which stay as they are; the allowed ones act on a fresh volume and the owner's other instance.
    "create_volume": {"POST": (codes(LOGIN, 404, 404, SEE_OTHER, SEE_OTHER, SEE_OTHER), lambda w, r: dict(
        {"data": {"name": unique("pv-"), "size_gib": "1"}},
        **({"instance_id": w.volume_target} if r in AUTHORISED else {})))},
    "attach_volume": {"POST": (codes(LOGIN, 404, 404, SEE_OTHER, SEE_OTHER, SEE_OTHER), lambda w, r: (
        {"instance_id": w.volume_target, "data": {"volume": str(w.fresh_volume())}} if r in AUTHORISED
        else {"data": {"volume": str(w.volume)}}))},
    "detach_volume": {"POST": (codes(LOGIN, 404, 404, SEE_OTHER, SEE_OTHER, SEE_OTHER), fresh_for(
        AUTHORISED, lambda w: {"instance_id": w.volume_target, "volume_id": w.fresh_volume(w.volume_target)}))},
    "delete_volume": {"POST": (codes(LOGIN, 404, 404, SEE_OTHER, SEE_OTHER, SEE_OTHER),
                               fresh_for(AUTHORISED, lambda w: {"volume_id": w.fresh_volume()}))},
    # -- keys --
    "keys": {"GET": (ANYONE, shared),
             "POST": (ANYONE, form(lambda w: {"name": unique("k"), "public_key": public_key_line(generate_ed25519_key())}))},
    "generate_key": {"POST": (ANYONE, form(lambda w: {"name": unique("g")}))},
    # Someone else's key looks missing ("deleted": false): the page shows the list again, the key stays.
    "delete_key": {"POST": (ANYONE, fresh_for(("owner", "admin"), lambda w: {"key_id": w.fresh_key()}))},
    # -- courses (teachers) --
    "teacher_courses": {"GET": (ANYONE, shared)},
    "teacher_course": {"GET": (MANAGERS, shared)},
    "teacher_course_defaults": {"POST": (codes(LOGIN, 404, 403, 403, SEE_OTHER, SEE_OTHER),
                                         form(lambda w: {"description": "walked"}))},
    "teacher_course_add_member": {"POST": (codes(LOGIN, 404, 403, 403, SEE_OTHER, SEE_OTHER),
                                           lambda w, r: {"data": {"user": w.fresh_user(), "role": "member"}})},
    "teacher_course_import": {"POST": (codes(LOGIN, 404, 403, 403, 200, 200),
                                       lambda w, r: {"data": {"csv": csv_rows(w).decode()}})},
    "teacher_course_remove_member": {"POST": (codes(LOGIN, 404, 403, 403, SEE_OTHER, SEE_OTHER),
                                              fresh_for(("manager", "admin"), lambda w: {"user_id": w.fresh_member()}))},
    # Subnet blocks: the refused forms aim at the world's subnet and block, which stay; a manager's or
    # an admin's reserve takes a block of a fresh subnet, an End a fresh block. (The service refuses
    # the outsider with 403; the course page it is shown on says 404 first.)
    "teacher_course_reserve_block": {"POST": (codes(LOGIN, 404, 403, 403, SEE_OTHER, SEE_OTHER), lambda w, r: {
        "data": {"prefixlen": "28",
                 "subnet": (w.fresh_subnet() if r in ("manager", "admin") else w.subnet)["name"]}})},
    "teacher_course_end_block": {"POST": (codes(LOGIN, 404, 403, 403, SEE_OTHER, SEE_OTHER), fresh_for(
        ("manager", "admin"), lambda w: {"block_id": w.fresh_block()["id"]}))},
    # Security groups and floating IPs (views/network.py): the refused forms aim at the world's
    # group and floating IP, which stay as they are; the allowed ones at fresh ones (an associate:
    # with the owner's other instance, whose floating IP from an earlier row is taken off first).
    # The service's refusal of a member is a 404 (not their floating IP) or a 403; the course page
    # it is shown on is its managers' (403 first).
    "network_create_group": {"POST": (codes(LOGIN, 404, 403, 403, SEE_OTHER, SEE_OTHER),
                                      form(lambda w: {"name": unique("sg-"), "description": "walked"}))},
    "network_add_rule": {"POST": (codes(LOGIN, 404, 403, 403, SEE_OTHER, SEE_OTHER), lambda w, r: {"data": {
        "group": str((w.fresh_security_group() if r in ("manager", "admin") else w.security_group)["id"]),
        "protocol": "udp", "port_min": "53", "cidr": "10.0.0.0/8"}})},
    "network_remove_rule": {"POST": (codes(LOGIN, 404, 403, 403, SEE_OTHER, SEE_OTHER), fresh_for(
        ("manager", "admin"), lambda w: (lambda group: {"group_id": group["id"], "rule_id": group["rules"][0]["id"]})(
            w.fresh_security_group())))},
    "network_delete_group": {"POST": (codes(LOGIN, 404, 403, 403, SEE_OTHER, SEE_OTHER), fresh_for(
        ("manager", "admin"), lambda w: {"group_id": w.fresh_security_group()["id"]}))},
    "network_allocate_ip": {"POST": (codes(LOGIN, 404, SEE_OTHER, SEE_OTHER, SEE_OTHER, SEE_OTHER),
                                     form(lambda w: {"pool": w.floating_pool["name"]}))},
    "network_associate_ip": {"POST": (codes(LOGIN, 404, 403, SEE_OTHER, SEE_OTHER, SEE_OTHER), lambda w, r: {"data": (
        {"floating_ip": str(w.fresh_floating_ip()["id"]), "instance": w.without_floating_ip(w.volume_target)}
        if r in AUTHORISED else {"floating_ip": str(w.floating_ip["id"]), "instance": w.instance})})},
    "network_disassociate_ip": {"POST": (codes(LOGIN, 404, 403, SEE_OTHER, SEE_OTHER, SEE_OTHER), fresh_for(
        AUTHORISED, lambda w: {"floating_ip_id": w.fresh_floating_ip(w.without_floating_ip(w.volume_target))["id"]}))},
    "network_release_ip": {"POST": (codes(LOGIN, 404, 403, SEE_OTHER, SEE_OTHER, SEE_OTHER),
                                    fresh_for(AUTHORISED, lambda w: {"floating_ip_id": w.fresh_floating_ip()["id"]}))},
    # The instance page's floating IP forms: the refused ones aim at the owner's instance (404 before
    # anything is allocated); the allowed ones at the owner's other instance, its floating IP taken off.
    "network_instance_new_ip": {"POST": (codes(LOGIN, 404, 404, SEE_OTHER, SEE_OTHER, SEE_OTHER), lambda w, r: dict(
        {"data": {"pool": w.floating_pool["name"]}},
        **({"instance_id": w.without_floating_ip(w.volume_target)} if r in AUTHORISED else {})))},
    "network_instance_associate_ip": {"POST": (codes(LOGIN, 404, 404, SEE_OTHER, SEE_OTHER, SEE_OTHER), lambda w, r: (
        {"instance_id": w.without_floating_ip(w.volume_target), "data": {"floating_ip": str(w.fresh_floating_ip()["id"])}}
        if r in AUTHORISED else {"data": {"floating_ip": str(w.floating_ip["id"])}}))},
    "network_instance_disassociate_ip": {"POST": (codes(LOGIN, 404, 404, SEE_OTHER, SEE_OTHER, SEE_OTHER), fresh_for(
        AUTHORISED, lambda w: {"instance_id": w.volume_target,
                               "floating_ip_id": w.fresh_floating_ip(w.without_floating_ip(w.volume_target))["id"]}))},
    # The instance's own group again: a change that changes nothing.
    "network_set_instance_groups": {"POST": (codes(LOGIN, 404, 404, SEE_OTHER, SEE_OTHER, SEE_OTHER),
                                             form(lambda w: {"security_groups": "default"}))},
    # The pools page is the admins' (it shows the subnets); only admins change pools.
    "network_floating_pools": {"GET": (ADMINS, shared),
                               "POST": (codes(LOGIN, 403, 403, 403, 403, SEE_OTHER), form(lambda w: {
                                   "name": unique("pool-"), "cidr": w.fresh_cidr().replace("10.100.", "100.64.")}))},
    "network_delete_pool": {"POST": (codes(LOGIN, 403, 403, 403, 403, SEE_OTHER),
                                     fresh_for(("admin",), lambda w: {"pool_id": w.fresh_floating_pool()["id"]}))},
    # Members see the course's instances that are theirs (the instances service filters).
    "teacher_course_instances": {"GET": (codes(LOGIN, 404, 200, 200, 200, 200), shared)},
    "teacher_course_instance_rows": {"GET": (codes(LOGIN, 404, 200, 200, 200, 200), shared)},
    # -- administration --
    "admin_signups": {"GET": (ADMINS, shared)},
    "admin_approve_user": {"POST": (codes(LOGIN, 403, 403, 403, 403, SEE_OTHER),
                                    fresh_for(("admin",), lambda w: {"user_id": w.fresh_user("pending")}))},
    "admin_reject_user": {"POST": (codes(LOGIN, 403, 403, 403, 403, SEE_OTHER), lambda w, r: dict(
        {"data": {"reason": "no"}}, **({"user_id": w.fresh_user("pending")} if r == "admin" else {})))},
    "admin_users": {"GET": (ADMINS, shared),
                    "POST": (codes(LOGIN, 403, 403, 403, 403, 200), form(lambda w: (lambda n: {
                        "username": n, "email": f"{n}@lab.example"})(unique("c"))))},
    "admin_import_users": {"POST": (codes(LOGIN, 403, 403, 403, 403, 200),
                                    lambda w, r: {"data": {"csv": csv_rows(w).decode()}})},
    "admin_suspend_user": {"POST": (codes(LOGIN, 403, 403, 403, 403, SEE_OTHER),
                                    fresh_for(("admin",), lambda w: {"user_id": w.fresh_user()}))},
    "admin_enable_user": {"POST": (codes(LOGIN, 403, 403, 403, 403, SEE_OTHER),
                                   fresh_for(("admin",), lambda w: {"user_id": w.fresh_user("suspended")}))},
    "admin_delete_user": {"POST": (codes(LOGIN, 403, 403, 403, 403, SEE_OTHER),
                                   fresh_for(("admin",), lambda w: {"user_id": w.fresh_user()}))},
    "admin_courses": {"GET": (ADMINS, shared),
                      "POST": (codes(LOGIN, 403, 403, 403, 403, SEE_OTHER), form(lambda w: {"name": unique("n-")}))},
    # (The outsider's 404 from the service is re-rendered on the admin page, which is refused: 403.)
    "admin_set_quota": {"POST": (codes(LOGIN, 403, 403, 403, 403, SEE_OTHER),
                                 fresh_for(("admin",), lambda w: {"project_id": w.fresh_project()}))},
    "admin_images": {"GET": (ADMINS, shared),
                     "POST": (codes(LOGIN, 403, 403, 403, 403, 400), form(lambda w: {
                         "name": unique("img"), "source_path": "/nonexistent/disk.qcow2"}))},
    # -- images: the owner's private image (its course's manager does not see it) --
    "images": {"GET": (ANYONE, shared)},
    # A form without its file: refused naming `file` (400) for whoever may make a private image (anyone).
    "upload_image": {"POST": (codes(LOGIN, 400, 400, 400, 400, 400), form(lambda w: {"name": unique("up-")}))},
    "delete_image": {"POST": (codes(LOGIN, 404, 404, SEE_OTHER, 404, SEE_OTHER),
                              fresh_for(("owner", "admin"), lambda w: {"image_id": w.fresh_image()}))},
    # The owner's instance runs: those who may save it are refused by its state (409).
    "save_instance_image": {"POST": (codes(LOGIN, 404, 404, 409, 409, 409),
                                     form(lambda w: {"name": unique("save-"), "visibility": "private"}))},
    "admin_hosts": {"GET": (ADMINS, shared)},
    "admin_host": {"GET": (ADMINS, lambda w, r: {"name": host_of(w)})},
    "host_graph": {"GET": (ADMINS, lambda w, r: {"name": host_of(w), "metric": "load"})},
    # Enabling an enabled host changes nothing (the world's host keeps taking instances).
    "admin_host_state": {"POST": (codes(LOGIN, 403, 403, 403, 403, SEE_OTHER),
                                  lambda w, r: {"name": host_of(w), "action": "enable"})},
    # Draining the world's only host would disable it: a host that does not exist (404 on the hosts page).
    "admin_drain_host": {"POST": (codes(LOGIN, 403, 403, 403, 403, 404), lambda w, r: {"name": "no-such-host"})},
    # Subnets: the refused calls aim at the world's subnet, which stays as it is; an admin's change
    # gets a fresh subnet.
    "admin_subnets": {"GET": (ADMINS, shared),
                      "POST": (codes(LOGIN, 403, 403, 403, 403, SEE_OTHER),
                               form(lambda w: {"name": unique("net-"), "cidr": w.fresh_cidr()}))},
    "admin_subnet": {"GET": (ADMINS, shared)},
    "admin_subnet_macs": {"GET": (ADMINS, shared)},
    "admin_reserve_address": {"POST": (codes(LOGIN, 403, 403, 403, 403, SEE_OTHER), lambda w, r: (
        lambda subnet: {"subnet_id": subnet["id"], "data": {"ip": subnet["cidr"].replace(".0/24", ".11")}})(
            w.fresh_subnet() if r == "admin" else w.subnet))},
    "admin_release_address": {"POST": (codes(LOGIN, 403, 403, 403, 403, SEE_OTHER), fresh_for(("admin",), lambda w: (
        lambda subnet: {"subnet_id": subnet["id"], "ip": subnet["reserved"][0]})(w.fresh_subnet())))},
    "admin_delete_subnet": {"POST": (codes(LOGIN, 403, 403, 403, 403, SEE_OTHER),
                                     fresh_for(("admin",), lambda w: {"subnet_id": w.fresh_subnet()["id"]}))},
    "admin_audit": {"GET": (ADMINS, shared)},
    "admin_instances": {"GET": (ADMINS, shared)},
    "admin_instance_rows": {"GET": (ADMINS, shared)},
    # Alarms: the instance page's panel (owner, managers, admins) and the host page's (admins).
    "instance_alarms": {"GET": (OWNERS, shared)},
    "create_instance_alarm": {"POST": (codes(LOGIN, 404, 404, SEE_OTHER, SEE_OTHER, SEE_OTHER), form(lambda w: {
        "metric": "cpu_percent", "comparison": "GreaterThanThreshold", "threshold": "99"}))},
    "host_alarms": {"GET": (ADMINS, lambda w, r: {"name": host_of(w)})},
    "create_host_alarm": {"POST": (codes(LOGIN, 403, 403, 403, 403, SEE_OTHER), lambda w, r: {
        "name": host_of(w), "data": {"metric": "loadavg", "comparison": "GreaterThanThreshold", "threshold": "50"}})},
    "delete_alarm_page": {"POST": (codes(LOGIN, 404, 404, SEE_OTHER, SEE_OTHER, SEE_OTHER), lambda w, r: {
        "alarm_id": fresh_alarm(w) if r in AUTHORISED else owners_alarm(w)})},
    # Scheduled actions: the instance page's panel (owner, managers, admins).
    "instance_schedules": {"GET": (OWNERS, shared)},
    "create_instance_schedule": {"POST": (codes(LOGIN, 404, 404, SEE_OTHER, SEE_OTHER, SEE_OTHER), form(lambda w: {
        "action": "stop", "at": "2099-01-01T08:00:00+01:00"}))},
    "delete_schedule_page": {"POST": (codes(LOGIN, 404, 404, SEE_OTHER, SEE_OTHER, SEE_OTHER), lambda w, r: {
        "schedule_id": fresh_schedule(w) if r in AUTHORISED else owners_schedule(w)})},
}


def browser(url, api=None):
    """A role's portal session: the role's own token as the session cookie (what /login sets),
    and the CSRF token its pages carry."""
    session = Portal(url, None if api is None else api.token)
    return session, session.csrf("/account" if api is not None else "/login")


def default_params(world):
    return {"user_id": world.owner.user_id, "project_id": world.project_a["id"], "instance_id": world.instance,
            "key_id": world.key, "action": "start", "subnet_id": world.subnet["id"], "ip": world.reserved_ip,
            "block_id": world.block["id"], "volume_id": world.volume, "group_id": world.security_group["id"],
            "rule_id": world.security_group["rules"][0]["id"], "floating_ip_id": world.floating_ip["id"],
            "pool_id": world.floating_pool["id"], "image_id": world.image}


def url_of(rule, params):
    return re.sub(r"<(?:[^:>]+:)?([a-z_]+)(?:\([^)]*\))?>",
                  lambda m: str(params[m.group(1)]), re.sub(r"<any\([^)]*\):([a-z_]+)>", r"<\1>", rule))


def walk(world):
    browsers = {role: browser(world.url, None if role == "anon" else world.session(role)) for role in ROLES}
    mismatches, seen = [], set()
    for page in portal.pages:
        rows = TABLE.get(page.endpoint)
        if rows is None:
            mismatches.append(f"{page.rule} ({page.endpoint}) has no row in the portal's authorisation table")
            continue
        for method in page.methods:
            seen.add((page.endpoint, method))
            if method not in rows:
                mismatches.append(f"{method} {page.rule} has no row in the portal's authorisation table")
                continue
            expected, make_call = rows[method]
            for role in ROLES:
                call = make_call(world, role)
                session_of = call.pop("session_of", None)
                session, csrf = browser(world.url, session_of) if session_of is not None else browsers[role]
                data, query = call.pop("data", None), call.pop("query", None)
                if method == "POST":
                    data = dict(data or {}, csrf_token=csrf)
                url = world.url + url_of(page.rule, dict(default_params(world), **call))
                response = session.http.request(method, url, data=data, params=query, allow_redirects=False,
                                                timeout=30)
                if response.status_code != expected[role]:
                    mismatches.append(f"{method} {page.rule} as {role}: {response.status_code} (expected "
                                      f"{expected[role]}) {response.headers.get('Location', '')}")
                if response.status_code == LOGIN:
                    assert response.headers["Location"].startswith("/login"), response.headers["Location"]
    return mismatches, seen


@pytest.fixture(scope="module")
def portal_walked(world):
    return walk(world)


def test_every_portal_page_answers_every_role_as_the_table_says(portal_walked):
    mismatches, seen = portal_walked
    assert not mismatches, "\n".join(mismatches)
    rows = {(endpoint, method) for endpoint, methods in TABLE.items() for method in methods}
    assert rows <= seen, f"rows for pages that no longer exist: {rows - seen}"


def test_the_owners_instance_and_key_and_the_subnet_and_block_survive_the_portal_walk(world, portal_walked):
    owner = world.owner
    assert owner.call("GET", f"/instances/{world.instance}", 200).json()["state"] == "running"
    assert owner.call("GET", f"/keys/{world.key}", 200).json()["user_id"] == owner.user_id
    assert owner.call("GET", f"/users/{owner.user_id}", 200).json()["status"] == "active"
    subnet = world.admin.call("GET", f"/subnets/{world.subnet['id']}", 200).json()
    assert (subnet["name"], subnet["cidr"], subnet["reserved"]) == (
        world.subnet["name"], world.subnet["cidr"], [world.reserved_ip])
    blocks = {b["id"]: b for b in world.blocks_of_a()}
    assert blocks.get(world.block["id"], {}).get("cidr") == world.block["cidr"], "the world's block was ended"
    volume = owner.call("GET", f"/volumes/{world.volume}", 200).json()
    assert (volume["state"], volume["instance"]) == ("available", None)
    group = world.manager.call("GET", f"/security-groups/{world.security_group['id']}", 200).json()
    assert group["rules"] == world.security_group["rules"] and group["instances"] == []
    floating_ip = owner.call("GET", f"/floating-ips/{world.floating_ip['id']}", 200).json()
    assert (floating_ip["ip"], floating_ip["instance"]) == (world.floating_ip["ip"], None)
    assert world.floating_pool["id"] in {p["id"] for p in world.admin.call("GET", "/floating-pools", 200).json()}


def test_pages_show_each_role_only_the_instances_it_may_see(world):
    a = world.project_a["id"]
    for role, sees in (("peer", False), ("outsider", False), ("owner", True), ("manager", True), ("admin", True)):
        session, _csrf = browser(world.url, world.session(role))
        for path in ("/", "/fragments/instances", f"/courses/{a}/instances", "/admin/instances"):
            page = session.http.get(world.url + path, allow_redirects=False, timeout=30)
            assert (world.instance in page.text) == (sees and page.status_code == 200), (role, path)
