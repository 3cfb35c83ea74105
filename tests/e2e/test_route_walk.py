"""The authorisation walk: every route of the OpenAPI document (so a new route cannot be
forgotten: one without a row below fails the test), called as anonymous, a member of another
project (outsider), a member of the same project who does not own the resource (peer), the owner,
the project's manager and an admin, with the ids of resources that belong to the owner. Every
answer's status is checked against the table, and afterwards nothing of the owner's has changed:
no cross-tenant read or write anywhere.

Calls that succeed and change something (a stop, a delete, a suspension...) get a fresh target of
the same kind, owned the same way, so each role meets the resource in the same state."""
import base64

import pytest
import requests

from imagebuilder.bareboot import generate_ed25519_key, public_key_line
from tests.e2e.api import Api, approved_user
from tests.e2e.walk_world import (AUTHORISED, ROLES, alarm_body, codes, csv_rows, current_cpu_weight,
                                   current_flavor, fresh_alarm, fresh_for, fresh_schedule, host_of, owners_alarm,
                                   owners_schedule, own_key, schedule_body, shared, unique)

# Each row: operationId -> (statuses for anon, outsider, peer, owner, manager, admin; how to call).
# `call(world, role)` returns a dict: path params, and optionally json/data/headers/query/session.
def body(make):
    return lambda world, role: {"json": make(world)}


TABLE = {
    # -- meta --
    "openapi": (codes(200, 200, 200, 200, 200, 200), shared),
    "healthz": (codes(200, 200, 200, 200, 200, 200), shared),
    "metrics": (codes(200, 200, 200, 200, 200, 200), shared),
    # -- users --
    "signup": (codes(201, 201, 201, 201, 201, 201), body(lambda w: (lambda n: {
        "username": n, "email": f"{n}@lab.example", "password": "a good passphrase"})(unique("s")))),
    "list_users": (codes(401, 403, 403, 403, 403, 200), shared),
    "create_user": (codes(401, 403, 403, 403, 403, 201), body(lambda w: (lambda n: {
        "username": n, "email": f"{n}@lab.example"})(unique("c")))),
    "import_users": (codes(401, 403, 403, 403, 200, 200), lambda w, r: {
        "data": csv_rows(w), "headers": {"Content-Type": "text/csv"}}),
    "get_user": (codes(401, 404, 404, 200, 404, 200), shared),
    "approve_user": (codes(401, 403, 403, 403, 403, 200),
                     fresh_for(("admin",), lambda w: {"user_id": w.fresh_user("pending")})),
    "reject_user": (codes(401, 403, 403, 403, 403, 200), lambda w, r: dict(
        {"json": {"reason": "no"}}, **({"user_id": w.fresh_user("pending")} if r == "admin" else {}))),
    "suspend_user": (codes(401, 403, 403, 403, 403, 200), lambda w, r: dict(
        {"json": {}}, **({"user_id": w.fresh_user()} if r == "admin" else {}))),
    "enable_user": (codes(401, 403, 403, 403, 403, 200),
                    fresh_for(("admin",), lambda w: {"user_id": w.fresh_user("suspended")})),
    "delete_user": (codes(401, 403, 403, 403, 403, 200),
                    fresh_for(("admin",), lambda w: {"user_id": w.fresh_user()})),
    # Only the user themself changes their password (it needs the current one); the owner acts on
    # a fresh session of their own and gets their tokens revoked, so a copy of the owner is used.
    "change_password": (codes(401, 404, 404, 200, 404, 403), lambda w, r: (
        _own_password_change(w) if r == "owner" else
        {"json": {"current_password": "a good passphrase", "password": "another passphrase"}})),
    "reset_password": (codes(401, 403, 403, 403, 403, 200),
                       fresh_for(("admin",), lambda w: {"user_id": w.fresh_user()})),
    "set_password": (codes(400, 400, 400, 400, 400, 400), body(lambda w: {
        "token": "x" * 43, "password": "a good passphrase"})),
    "list_tokens": (codes(401, 404, 404, 200, 404, 200), shared),
    "revoke_user_token": (codes(401, 404, 404, 200, 404, 200), lambda w, r: (
        {"token_id": _spare_token(w)} if r in ("owner", "admin") else {})),
    "issue_token": (codes(401, 401, 401, 401, 401, 401), body(lambda w: {
        "username": w.owner.username, "password": "not the password"})),
    "revoke_current_token": (codes(401, 200, 200, 200, 200, 200), lambda w, r: (
        {"session": w.fresh_login(w.session(r))} if r != "anon" else {})),
    # Everyone's own notification preferences (the path names no one else): on stays on.
    "get_notification_preferences": (codes(401, 200, 200, 200, 200, 200), shared),
    "set_notification_preferences": (codes(401, 200, 200, 200, 200, 200), body(lambda w: {"instance": True})),
    # -- projects --
    "list_projects": (codes(401, 200, 200, 200, 200, 200), shared),
    "create_project": (codes(401, 403, 403, 403, 403, 201), body(lambda w: {"name": unique("n-")})),
    "get_project": (codes(401, 404, 200, 200, 200, 200), shared),
    "update_project": (codes(401, 404, 403, 403, 200, 200), body(lambda w: {"description": "walked"})),
    "delete_project": (codes(401, 404, 403, 403, 403, 200),
                       fresh_for(("admin",), lambda w: {"project_id": w.fresh_project()})),
    "list_members": (codes(401, 404, 403, 403, 200, 200), shared),
    "add_member": (codes(401, 404, 403, 403, 201, 201), lambda w, r: {"json": {"user": w.fresh_user()}}),
    "update_member": (codes(401, 404, 403, 403, 200, 200), body(lambda w: {"quota": {"instances": None}})),
    "remove_member": (codes(401, 404, 403, 403, 200, 200),
                      fresh_for(("manager", "admin"), lambda w: {"user_id": w.fresh_member()})),
    "import_members": (codes(401, 404, 403, 403, 200, 200), lambda w, r: {
        "data": csv_rows(w), "headers": {"Content-Type": "text/csv"}}),
    "get_quota": (codes(401, 404, 200, 200, 200, 200), shared),
    "set_quota": (codes(401, 404, 403, 403, 403, 200), body(lambda w: {"instances": None})),
    "get_usage": (codes(401, 404, 200, 200, 200, 200), shared),
    # -- keys --
    "add_key": (codes(401, 201, 201, 201, 201, 201), body(lambda w: {
        "name": unique("k"), "public_key": public_key_line(generate_ed25519_key())})),
    "generate_key": (codes(401, 201, 201, 201, 201, 201), body(lambda w: {"name": unique("g")})),
    "list_keys": (codes(401, 200, 200, 200, 200, 200), shared),
    "get_key": (codes(401, 404, 404, 200, 404, 200), shared),
    # Someone else's key looks missing: {"deleted": false}, and it stays (checked at the end).
    "delete_key": (codes(401, 200, 200, 200, 200, 200),
                   fresh_for(("owner", "admin"), lambda w: {"key_id": w.fresh_key()})),
    # -- catalogue --
    "list_flavors": (codes(401, 200, 200, 200, 200, 200), shared),
    "list_images": (codes(401, 200, 200, 200, 200, 200), shared),
    "register_image": (codes(401, 403, 403, 403, 403, 400), body(lambda w: {
        "name": unique("img"), "source_path": "/nonexistent/disk.qcow2"})),
    # The owner's private image: only they and admins see it (its course's manager does not).
    "get_image": (codes(401, 404, 404, 200, 404, 200), shared),
    "delete_image": (codes(401, 404, 404, 200, 404, 200),
                     fresh_for(("owner", "admin"), lambda w: {"image_id": w.fresh_image()})),
    # Its file is uploaded already: those who may upload it are refused by its state (409).
    "upload_image_file": (codes(401, 404, 404, 409, 404, 409), lambda w, r: {
        "data": b"bytes", "headers": {"Content-Type": "application/octet-stream"}}),
    "upload_image_kernel": (codes(401, 404, 404, 409, 404, 409), lambda w, r: {
        "data": b"\x7fELF", "headers": {"Content-Type": "application/octet-stream"}}),
    "upload_image_ramdisk": (codes(401, 404, 404, 409, 404, 409), lambda w, r: {
        "data": b"070701", "headers": {"Content-Type": "application/octet-stream"}}),
    # The owner's instance runs: those who may save it are refused by its state (409).
    "save_instance_image": (codes(401, 404, 404, 409, 409, 409), body(lambda w: {"name": unique("save-")})),
    # -- instances --
    "create_instance": (codes(401, 403, 202, 202, 202, 202), lambda w, r: {"json": dict(
        w.create_body, name=unique("c-"), key=own_key(w, r))}),
    "list_instances": (codes(401, 200, 200, 200, 200, 200), shared),
    "get_instance": (codes(401, 404, 404, 200, 200, 200), shared),
    "list_instance_actions": (codes(401, 404, 404, 200, 200, 200), shared),
    "get_console": (codes(401, 404, 404, 200, 200, 200), shared),
    "get_instance_metrics": (codes(401, 404, 404, 200, 200, 200), shared),
    "stop_instance": (codes(401, 404, 404, 202, 202, 202),
                      fresh_for(AUTHORISED, lambda w: {"instance_id": w.fresh_instance()})),
    "reboot_instance": (codes(401, 404, 404, 202, 202, 202),
                        fresh_for(AUTHORISED, lambda w: {"instance_id": w.fresh_instance()})),
    # Starting a running instance: allowed, but it is running (409); refused ones never learn that.
    "start_instance": (codes(401, 404, 404, 409, 409, 409), shared),
    # The instance's own CPU weight again: allowed changes change nothing (the owner's things stay).
    # A manager sees the instance but may not change its resources: the owner pays for them.
    "set_instance_resources": (codes(401, 404, 404, 200, 403, 200),
                               body(lambda w: {"cpu_weight": current_cpu_weight(w)})),
    # Its own flavor again: a resize that changes nothing (202, as any accepted resize).
    "resize_instance": (codes(401, 404, 404, 202, 403, 202), body(lambda w: {"flavor": current_flavor(w)})),
    # Admins only (instance:migrate); the others never learn more than the instance page tells them.
    # Its own host: refused naming `host` (400), nothing moves (test_migrate.py moves one between two hosts).
    "migrate_instance": (codes(401, 404, 404, 403, 403, 400), body(lambda w: {"host": host_of(w)})),
    "delete_instance": (codes(401, 404, 404, 202, 202, 202),
                        fresh_for(AUTHORISED, lambda w: {"instance_id": w.fresh_instance()})),
    # -- administration --
    "reconcile": (codes(401, 403, 403, 403, 403, 200), shared),
    "list_reconcile_reports": (codes(401, 403, 403, 403, 403, 200), shared),
    "list_audit": (codes(401, 403, 403, 403, 403, 200), shared),
    "list_hosts": (codes(401, 403, 403, 403, 403, 200), shared),
    "get_host": (codes(401, 403, 403, 403, 403, 200), lambda w, r: {"name": host_of(w)}),
    # Enabling an enabled host changes nothing. Disabling the world's host would stop the walk's own
    # creates: a host that does not exist shows the policy answers first (test_cli_hosts disables).
    "enable_host": (codes(401, 403, 403, 403, 403, 200), lambda w, r: {"name": host_of(w)}),
    "disable_host": (codes(401, 403, 403, 403, 403, 404), lambda w, r: {"name": "no-such-host"}),
    # Draining the world's only host would disable it too (test_migrate.py drains one of two).
    "drain_host": (codes(401, 403, 403, 403, 403, 404), lambda w, r: {"name": "no-such-host"}),
    # -- subnets (admins only: the policy refuses the others before any lookup) --
    # The world's subnet (with its reserved address) is what the refused calls aim at and stays as
    # it is; an admin's call that changes a subnet gets a fresh one.
    "list_subnets": (codes(401, 403, 403, 403, 403, 200), shared),
    "create_subnet": (codes(401, 403, 403, 403, 403, 201),
                      body(lambda w: {"name": unique("net-"), "cidr": w.fresh_cidr()})),
    "get_subnet": (codes(401, 403, 403, 403, 403, 200), shared),
    "delete_subnet": (codes(401, 403, 403, 403, 403, 200),
                      fresh_for(("admin",), lambda w: {"subnet_id": w.fresh_subnet()["id"]})),
    "reserve_address": (codes(401, 403, 403, 403, 403, 200), lambda w, r: _reserve_in(
        w.fresh_subnet() if r == "admin" else w.subnet)),
    "unreserve_address": (codes(401, 403, 403, 403, 403, 200), fresh_for(("admin",), lambda w: (
        lambda subnet: {"subnet_id": subnet["id"], "ip": subnet["reserved"][0]})(w.fresh_subnet()))),
    "list_subnet_macs": (codes(401, 403, 403, 403, 403, 200), shared),
    # -- a course's subnet blocks (its managers reserve and end them, its members list them) --
    # The refused calls aim at the world's subnet and block, which stay as they are; a manager's or
    # an admin's reserve gets a block of a fresh subnet (one block per course and subnet), an end a
    # fresh block. (Outside the course: 404, as get_project answers: nothing of the course shows.)
    "reserve_subnet_block": (codes(401, 404, 403, 403, 201, 201), lambda w, r: {"json": {
        "prefixlen": 28, "subnet": (w.fresh_subnet() if r in ("manager", "admin") else w.subnet)["name"]}}),
    "list_subnet_blocks": (codes(401, 404, 200, 200, 200, 200), shared),
    "end_subnet_block": (codes(401, 404, 403, 403, 200, 200),
                         fresh_for(("manager", "admin"), lambda w: {"block_id": w.fresh_block()["id"]})),
    # -- data volumes (storage): as instances, the owner, the course's managers and admins; another
    # member or an outsider meets a 404. The world's volume (available) and snapshot stay; calls that
    # change one get a fresh one; an attach goes to the owner's other instance (volume_target). --
    "create_volume": (codes(401, 403, 201, 201, 201, 201), lambda w, r: {"json": {
        "name": unique("v-"), "size_gib": 1, "project": w.project_a["id"]}}),
    "list_volumes": (codes(401, 200, 200, 200, 200, 200), shared),
    "get_volume": (codes(401, 404, 404, 200, 200, 200), shared),
    "delete_volume": (codes(401, 404, 404, 200, 200, 200),
                      fresh_for(AUTHORISED, lambda w: {"volume_id": w.fresh_volume()})),
    "attach_volume": (codes(401, 404, 404, 200, 200, 200), lambda w, r: (
        {"volume_id": w.fresh_volume(), "json": {"instance": w.volume_target}} if r in AUTHORISED
        else {"json": {"instance": w.instance}})),
    "detach_volume": (codes(401, 404, 404, 200, 200, 200),
                      fresh_for(AUTHORISED, lambda w: {"volume_id": w.fresh_volume(w.volume_target)})),
    "create_snapshot": (codes(401, 404, 404, 201, 201, 201), body(lambda w: {"name": unique("s-")})),
    "list_volume_snapshots": (codes(401, 404, 404, 200, 200, 200), shared),
    "list_snapshots": (codes(401, 200, 200, 200, 200, 200), shared),
    "get_snapshot": (codes(401, 404, 404, 200, 200, 200), shared),
    "delete_snapshot": (codes(401, 404, 404, 200, 200, 200),
                        fresh_for(AUTHORISED, lambda w: {"snapshot_id": w.fresh_snapshot()["id"]})),
    "list_storage_pools": (codes(401, 403, 403, 403, 403, 200), shared),
    # -- floating IPs (network): pools are the admins'; an address is its allocator's, its
    # course's managers' and the admins'; another member or an outsider meets a 404. Calls that
    # change one get a fresh one (an associate: with a fresh instance of the owner's). --
    "list_floating_pools": (codes(401, 200, 200, 200, 200, 200), shared),
    "create_floating_pool": (codes(401, 403, 403, 403, 403, 201), lambda w, r: {"json": {
        "name": unique("pool-"), "cidr": w.fresh_cidr().replace("10.100.", "100.64.")}}),
    "delete_floating_pool": (codes(401, 403, 403, 403, 403, 200),
                             fresh_for(("admin",), lambda w: {"pool_id": w.fresh_floating_pool()["id"]})),
    "allocate_floating_ip": (codes(401, 404, 201, 201, 201, 201), lambda w, r: {"json": {
        "project": w.project_a["id"], "pool": w.floating_pool["name"]}}),
    "list_floating_ips": (codes(401, 200, 200, 200, 200, 200), shared),
    "get_floating_ip": (codes(401, 404, 404, 200, 200, 200), shared),
    "associate_floating_ip": (codes(401, 404, 404, 200, 200, 200), lambda w, r: (
        {"floating_ip_id": w.fresh_floating_ip()["id"], "json": {"instance": w.fresh_instance()}}
        if r in AUTHORISED else {"json": {"instance": w.instance}})),
    "disassociate_floating_ip": (codes(401, 404, 404, 200, 200, 200), fresh_for(AUTHORISED, lambda w: {
        "floating_ip_id": w.fresh_floating_ip(w.fresh_instance())["id"]})),
    "release_floating_ip": (codes(401, 404, 404, 200, 200, 200),
                            fresh_for(AUTHORISED, lambda w: {"floating_ip_id": w.fresh_floating_ip()["id"]})),
    # -- security groups (network): a course's members see them, its managers change them; an
    # instance's groups are set by whoever may act on the instance. --
    "list_security_groups": (codes(401, 404, 200, 200, 200, 200), shared),
    "create_security_group": (codes(401, 404, 403, 403, 201, 201), lambda w, r: {"json": {
        "project": w.project_a["id"], "name": unique("sg-")}}),
    "get_security_group": (codes(401, 404, 200, 200, 200, 200), shared),
    "delete_security_group": (codes(401, 404, 403, 403, 200, 200),
                              fresh_for(("manager", "admin"), lambda w: {"group_id": w.fresh_security_group()["id"]})),
    "add_security_group_rule": (codes(401, 404, 403, 403, 201, 201), lambda w, r: dict(
        {"json": {"protocol": "udp", "port_min": 53, "cidr": "10.0.0.0/8"}},
        **({"group_id": w.fresh_security_group()["id"]} if r in ("manager", "admin") else {}))),
    "remove_security_group_rule": (codes(401, 404, 403, 403, 200, 200), fresh_for(("manager", "admin"), lambda w: (
        lambda group: {"group_id": group["id"], "rule_id": group["rules"][0]["id"]})(w.fresh_security_group()))),
    "get_instance_security_groups": (codes(401, 404, 404, 200, 200, 200), shared),
    "set_instance_security_groups": (codes(401, 404, 404, 200, 200, 200), body(lambda w: {
        "security_groups": ["default"]})),
    # -- metrics in XenServer's shapes (HTTP Basic with each role's username and password) --
    "rrd_updates": (codes(401, 404, 404, 200, 200, 200), lambda w, r: {
        "headers": basic_auth(w, r), "params": {"start": 0, "vm_uuid": w.instance}}),
    "vm_rrd": (codes(401, 404, 404, 200, 200, 200), lambda w, r: {
        "headers": basic_auth(w, r), "params": {"uuid": w.instance}}),
    "get_instance_graph": (codes(401, 404, 404, 200, 200, 200), lambda w, r: {"metric": "cpu"}),
    "get_host_graph": (codes(401, 403, 403, 403, 403, 200), lambda w, r: {"name": host_of(w), "metric": "cpu"}),
    # -- alarms (metrics): on the owner's instance, its owner, course managers and admins --
    "create_alarm": (codes(401, 404, 404, 201, 201, 201), body(lambda w: alarm_body(w))),
    "list_alarms": (codes(401, 200, 200, 200, 200, 200), shared),
    "get_alarm": (codes(401, 404, 404, 200, 200, 200), lambda w, r: {"alarm_id": owners_alarm(w)}),
    "get_alarm_history": (codes(401, 404, 404, 200, 200, 200), lambda w, r: {"alarm_id": owners_alarm(w)}),
    "delete_alarm": (codes(401, 404, 404, 200, 200, 200), lambda w, r: {
        "alarm_id": fresh_alarm(w) if r in AUTHORISED else owners_alarm(w)}),
    # -- scheduled actions (metrics): the alarms' rules --
    "create_schedule": (codes(401, 404, 404, 201, 201, 201), body(lambda w: schedule_body(w))),
    "list_schedules": (codes(401, 200, 200, 200, 200, 200), shared),
    "get_schedule": (codes(401, 404, 404, 200, 200, 200), lambda w, r: {"schedule_id": owners_schedule(w)}),
    "get_schedule_history": (codes(401, 404, 404, 200, 200, 200), lambda w, r: {"schedule_id": owners_schedule(w)}),
    "delete_schedule": (codes(401, 404, 404, 200, 200, 200), lambda w, r: {
        "schedule_id": fresh_schedule(w) if r in AUTHORISED else owners_schedule(w)}),
}



def basic_auth(world, role):
    """The role's username and password as an HTTP Basic header (none for anon)."""
    if role == "anon":
        return {"Authorization": ""}
    session = world.session(role)
    pair = f"{session.username}:{session.password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def _reserve_in(subnet):
    """Reserve the .11 of `subnet` (a /24 of the world's, free)."""
    return {"subnet_id": subnet["id"], "json": {"ip": subnet["cidr"].replace(".0/24", ".11"), "note": "walked"}}


def _spare_token(world):
    """A second token of the owner, to be revoked without ending the walk's own session."""
    world.fresh_login(world.owner)
    return world.owner.call("GET", f"/users/{world.owner.user_id}/tokens", 200).json()[-1]["id"]


def _own_password_change(world):
    """The owner changes their own password; a copy of the owner (same project) plays it, so
    the walk's owner keeps their tokens."""
    twin = approved_user(world.url, world.admin, unique("twin"), project=world.project_a["id"])
    return {"session": twin, "user_id": twin.user_id,
            "json": {"current_password": twin.password, "password": "another passphrase"}}



def operations(world):
    doc = requests.get(world.url + "/api/v1/openapi.json", timeout=30).json()
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def default_params(world):
    return {"user_id": world.owner.user_id, "project_id": world.project_a["id"], "instance_id": world.instance,
            "key_id": world.key, "token_id": world.token_id, "subnet_id": world.subnet["id"],
            "ip": world.reserved_ip, "block_id": world.block["id"], "volume_id": world.volume,
            "snapshot_id": world.snapshot["id"], "pool_id": world.floating_pool["id"],
            "floating_ip_id": world.floating_ip["id"], "group_id": world.security_group["id"],
            "rule_id": world.security_group["rules"][0]["id"], "image_id": world.image}


def walk(world):
    """Every operation as every role; returns (mismatches, operation ids seen)."""
    mismatches, seen = [], set()
    for method, path, operation in operations(world):
        name = operation["operationId"]
        seen.add(name)
        if name not in TABLE:
            mismatches.append(f"{method} {path} ({name}) has no row in the authorisation table")
            continue
        expected, make_call = TABLE[name]
        for role in ROLES:
            call = make_call(world, role)
            session = call.pop("session", None) or world.session(role)
            payload = {k: call.pop(k) for k in ("json", "data", "headers", "params") if k in call}
            url = world.url + path.format(**dict(default_params(world), **call))
            response = session.http.request(method, url, timeout=30, **payload)
            if response.status_code != expected[role]:
                mismatches.append(f"{method} {path} as {role}: {response.status_code} "
                                  f"(expected {expected[role]}) {response.text[:200]}")
    return mismatches, seen


@pytest.fixture(scope="module")
def walked(world):
    return walk(world)


def test_every_route_answers_every_role_as_the_table_says(walked):
    mismatches, seen = walked
    assert not mismatches, "\n".join(mismatches)
    assert set(TABLE) <= seen, f"rows for routes that no longer exist: {set(TABLE) - seen}"


def test_lists_show_each_role_only_what_it_may_see(world):
    def ids(api, path):
        return {item["id"] for item in api.call("GET", path, 200).json()}
    instance = world.instance
    assert instance in ids(world.owner, "/instances") and instance in ids(world.manager, "/instances")
    assert instance in ids(world.admin, "/instances")
    assert instance not in ids(world.peer, "/instances") and instance not in ids(world.outsider, "/instances")
    assert world.key in ids(world.owner, "/keys")
    for api in (world.peer, world.manager, world.outsider):
        assert world.key not in ids(api, "/keys")
    assert world.project_a["id"] not in ids(world.outsider, "/projects")
    assert world.project_b["id"] not in ids(world.owner, "/projects")
    assert ids(world.admin, "/projects") >= {world.project_a["id"], world.project_b["id"]}
    assert world.outsider.call("GET", f"/instances?project={world.project_a['id']}").status_code == 404
    for api in (world.owner, world.manager, world.admin):
        assert world.volume in ids(api, "/volumes") and world.snapshot["id"] in ids(api, "/snapshots")
    for api in (world.peer, world.outsider):
        assert world.volume not in ids(api, "/volumes") and world.snapshot["id"] not in ids(api, "/snapshots")


def test_the_owners_things_are_untouched_after_the_walk(world, walked):
    owner = world.owner
    assert owner.call("GET", f"/instances/{world.instance}", 200).json()["state"] == "running"
    assert owner.call("GET", f"/keys/{world.key}", 200).json()["user_id"] == owner.user_id
    me = owner.call("GET", f"/users/{owner.user_id}", 200).json()
    assert me["status"] == "active"
    Api(world.url).login(owner.username, owner.password)  # the password is still theirs
    members = {m["user_id"]: m["role"] for m in
               world.admin.call("GET", f"/projects/{world.project_a['id']}/members", 200).json()}
    assert members[owner.user_id] == "member" and members[world.manager.user_id] == "manager"
    assert members[world.peer.user_id] == "member" and world.outsider.user_id not in members
    subnet = world.admin.call("GET", f"/subnets/{world.subnet['id']}", 200).json()
    assert (subnet["name"], subnet["cidr"], subnet["reserved"]) == (
        world.subnet["name"], world.subnet["cidr"], [world.reserved_ip])
    assert owner.call("GET", f"/images/{world.image}", 200).json()["state"] == "active"
    assert owner.call("GET", f"/alarms/{owners_alarm(world)}", 200).json()["instance"] == world.instance
    assert owner.call("GET", f"/schedules/{owners_schedule(world)}", 200).json()["state"] == "active"
    volume = owner.call("GET", f"/volumes/{world.volume}", 200).json()
    assert (volume["state"], volume["instance"]) == ("available", None)
    assert owner.call("GET", f"/snapshots/{world.snapshot['id']}", 200).json()["state"] == "available"
    blocks = {b["id"]: b for b in world.blocks_of_a()}
    assert blocks.get(world.block["id"], {}).get("cidr") == world.block["cidr"], "the world's block was ended"
