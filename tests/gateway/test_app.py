"""The gateway app (Flask test client) against small nameko services on the real test broker,
reached through the real RpcPool. The services follow docs/architecture.md's method names and
return fixed data; every call is recorded so tests can see what went over RPC."""
import base64
import re

import eventlet
import pytest
from kombu import Connection
from nameko.rpc import rpc
from prometheus_client.parser import text_string_to_metric_families

from common.errors import Conflict, Forbidden, NotFound, RateLimited, Unauthorized
from gateway.app import create_app
from gateway.rpc_pool import RpcPool

USER = {"id": 7, "username": "alice", "role": "user"}
ADMIN = {"id": 1, "username": "admin", "role": "admin"}
TOKENS = {"alice-token": USER, "admin-token": ADMIN}
USER_AUTH = {"Authorization": "Bearer alice-token"}
ADMIN_AUTH = {"Authorization": "Bearer admin-token"}

INSTANCE_ID = "0b5a6f4e-3f0e-4c57-9d3e-2f1f5a0c9d11"
MISSING_ID = "11111111-1111-4111-8111-111111111111"
FOREIGN_ID = "22222222-2222-4222-8222-222222222222"
BOOM_ID = "33333333-3333-4333-8333-333333333333"
SLOW_ID = "44444444-4444-4444-8444-444444444444"
SECRET = "password=hunter2 at /srv/labcloud/instances/db.py line 42"

PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGgkY0bHIC0f9PUJPo4Y3YbwxHxR8rUTc3lkVJyBKWrA "
              "alice@lab")

CALLS = []  # (service.method, args) in call order; the services run in this process


def record(name, *args):
    CALLS.append((name, args))


def user(user_id, username="alice", status="active"):
    return {"id": user_id, "username": username, "email": f"{username}@example.org",
            "role": "user", "status": status, "created_at": "2024-01-01T00:00:00+00:00",
            "approved_at": None}


def instance(instance_id, state="running"):
    return {"id": instance_id, "name": "web-1", "user_id": 7, "state": state, "reason": None,
            "host": "hv1", "ip": "10.99.0.2", "mac": "aa:00:0a:63:00:02", "flavor": 1,
            "image": 1, "key": 3, "created_at": "2024-01-01T00:00:00+00:00",
            "updated_at": "2024-01-01T00:00:00+00:00", "running_at": None, "deleted_at": None}


class Accounts:
    name = "accounts"

    @rpc
    def authenticate(self, token):
        record("accounts.authenticate", token)
        if token not in TOKENS:
            raise Unauthorized("unknown or expired token")
        return TOKENS[token]

    @rpc
    def signup(self, request):
        record("accounts.signup", request)
        if request["username"] == "taken":
            raise Conflict("username already taken", {"username": ["already taken"]})
        return user(8, request["username"], status="pending")

    @rpc
    def issue_token(self, request, client):
        record("accounts.issue_token", request, client)
        if request["username"] == "pending":
            raise Forbidden("account not approved yet")
        if request["username"] == "hammered":
            raise RateLimited("too many token requests for this username", retry_after=42)
        return {"id": 5, "token": "alice-token", "expires_at": "2024-01-01T12:00:00+00:00"}

    @rpc
    def revoke_token(self, token):
        record("accounts.revoke_token", token)
        return {"revoked": True}

    @rpc
    def import_users(self, actor, request):
        record("accounts.import_users", actor, request)
        return {"created": 1, "existing": 0, "rows": [
            {"line": 2, "username": "bob", "result": "created", "user_id": 9, "message": None}]}

    @rpc
    def list_users(self, actor, query):
        record("accounts.list_users", actor, query)
        if actor["role"] != "admin":
            raise Forbidden("admins only")
        return [user(1, "admin"), user(7)]

    @rpc
    def get_user(self, actor, user_id):
        record("accounts.get_user", actor, user_id)
        return user(user_id)

    @rpc
    def approve_user(self, actor, user_id, request):
        record("accounts.approve_user", actor, user_id, request)
        if actor["role"] != "admin":
            raise Forbidden("admins only")
        return user(user_id)

    @rpc
    def add_key(self, actor, request):
        record("accounts.add_key", actor, request)
        return {"id": 3, "name": request["name"], "fingerprint": "SHA256:abc",
                "public_key": request["public_key"], "created_at": "2024-01-01T00:00:00+00:00"}

    @rpc
    def list_keys(self, actor):
        record("accounts.list_keys", actor)
        return []

    @rpc
    def get_key(self, actor, key_id):
        record("accounts.get_key", actor, key_id)
        raise NotFound(f"no key {key_id}")

    @rpc
    def delete_key(self, actor, key_id):
        record("accounts.delete_key", actor, key_id)
        return {"deleted": False}


class Instances:
    name = "instances"

    @rpc
    def list_flavors(self):
        record("instances.list_flavors")
        return [{"id": 1, "name": "small", "vcpus": 1, "memory_mib": 512, "disk_gib": 5,
                 "cpu_weight": 100, "cpu_cap_percent": 100}]

    @rpc
    def create_instance(self, actor, request):
        record("instances.create_instance", actor, request)
        return instance(INSTANCE_ID, state="pending")

    @rpc
    def list_instances(self, actor, include_deleted, project):
        record("instances.list_instances", actor, include_deleted, project)
        return [instance(INSTANCE_ID)]

    @rpc
    def list_instance_actions(self, actor, instance_id):
        record("instances.list_instance_actions", actor, instance_id)
        return [{"id": 1, "instance_id": instance_id, "action": "create", "user_id": 7, "username": "alice",
                 "requested_at": "2026-12-01T12:00:00", "finished_at": None, "result": "in_progress",
                 "message": None}]

    @rpc
    def reconcile(self, actor):
        record("instances.reconcile", actor)
        return {"id": 1, "started_at": "2026-12-01T12:00:00", "finished_at": "2026-12-01T12:00:01",
                "replica": "r", "trigger": "admin", "hosts": ["host1"], "findings": []}

    @rpc
    def list_reconcile_reports(self, actor, limit):
        record("instances.list_reconcile_reports", actor, limit)
        return []

    @rpc
    def get_instance(self, actor, instance_id):
        record("instances.get_instance", actor, instance_id)
        if instance_id == MISSING_ID:
            raise NotFound(f"no instance {instance_id}")
        if instance_id == FOREIGN_ID:
            raise Forbidden("not your instance")
        if instance_id == BOOM_ID:
            raise RuntimeError(SECRET)  # a bug in the service: must not reach the client
        if instance_id == SLOW_ID:
            eventlet.sleep(2)
            record("instances.get_instance.done")
        return instance(instance_id)

    @rpc
    def delete_instance(self, actor, instance_id):
        record("instances.delete_instance", actor, instance_id)
        return instance(instance_id, state="deleting")


IMAGE = {"id": 1, "name": "debian-12", "description": "Debian 12", "format": "qcow2",
         "size_bytes": 1 << 30, "min_disk_gib": 2, "created_at": "2024-01-01T00:00:00+00:00"}


class Storage:
    name = "storage"

    @rpc
    def list_images(self, actor):
        record("storage.list_images", actor)
        return [IMAGE]

    @rpc
    def show_image(self, actor, image_id):
        record("storage.show_image", actor, image_id)
        return IMAGE

    @rpc
    def delete_image(self, actor, image_id):
        record("storage.delete_image", actor, image_id)
        return {**IMAGE, "state": "deleted"}

    @rpc
    def start_image_upload(self, actor, image_id, length, part):
        record("storage.start_image_upload", actor, image_id, length, part)
        return {**IMAGE, "state": "uploading"}

    @rpc
    def upload_image_chunk(self, actor, image_id, offset, data, part):
        record("storage.upload_image_chunk", actor, image_id, offset, len(base64.b64decode(data)), part)
        return {"written": len(base64.b64decode(data))}

    @rpc
    def finish_image_upload(self, actor, image_id, length, part):
        record("storage.finish_image_upload", actor, image_id, length, part)
        return IMAGE

    @rpc
    def list_instance_volumes(self, instance_id):
        record("storage.list_instance_volumes", instance_id)
        return [{"id": 5, "name": "data", "size_gib": 2, "device": "vdb", "attach_state": "attached"}]


class Metrics:
    name = "metrics"

    @rpc
    def get_instance_metrics(self, instance_id, seconds):
        record("metrics.get_instance_metrics", instance_id, seconds)
        return {"instance_id": instance_id, "step": 10, "start": 0, "end": seconds,
                "series": {"cpu_percent": [[0, None]]}}

    @rpc
    def set_notification_preferences(self, actor, request):
        record("metrics.set_notification_preferences", actor, request)
        return [{"kind": kind, "enabled": request.get(kind, True), "can_disable": kind != "security",
                 "description": kind} for kind in ("account", "security", "instance")]


SERVICES = (Accounts, Instances, Storage, Metrics)


@pytest.fixture
def services(container_factory, rabbit_config):
    CALLS.clear()
    for cls in SERVICES:
        container_factory(cls, rabbit_config).start()
    yield
    CALLS.clear()


@pytest.fixture
def pool(rabbit_config):
    pool = RpcPool(dict(rabbit_config, RPC_POOL_SIZE=2, RPC_TIMEOUT=1))
    yield pool
    pool.close()


class RecordingAudit:
    """Stands in for gateway.audit.AuditTrail's broker side: keeps the records it would publish."""

    def __init__(self):
        from gateway.audit import AuditTrail
        self.trail = AuditTrail({})
        self.records = []
        self.trail.publish = self.records.append

    def init_app(self, app):
        self.trail.init_app(app)


@pytest.fixture
def audit():
    return RecordingAudit()


@pytest.fixture
def app(services, pool, rabbit_config, audit):
    # No token cache here, so each request's RPCs are visible; its own tests turn it on.
    return create_app(dict(rabbit_config, TOKEN_CACHE_SECONDS=0), rpc_pool=pool, audit=audit)


@pytest.fixture
def client(app):
    return app.test_client()


def rpc_calls(prefix=""):
    return [name for name, _ in CALLS if name.startswith(prefix)]


def assert_error(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    return body["error"]


# -- authentication ------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, {"Authorization": "alice-token"},
                                     {"Authorization": "Basic YWxpY2U6cHc="},
                                     {"Authorization": "Bearer "}])
def test_missing_or_malformed_header_is_401_without_rpc(client, headers):
    response = client.get("/api/v1/instances", headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert CALLS == []


def test_unknown_token_is_401_from_accounts(client):
    response = client.get("/api/v1/keys", headers={"Authorization": "Bearer nope"})
    assert_error(response, 401, "unauthorized")
    assert CALLS == [("accounts.authenticate", ("nope",))]


def test_actor_is_authenticated_once_and_passed_first(client):
    response = client.get("/api/v1/users/7", headers=USER_AUTH)
    assert response.status_code == 200 and response.get_json()["id"] == 7
    assert CALLS == [("accounts.authenticate", ("alice-token",)),
                     ("accounts.get_user", (USER, 7))]


def test_public_routes_need_no_token(client):
    response = client.post("/api/v1/users", json={"username": "bob", "email": "bob@example.org",
                                                  "password": "correct horse battery"})
    assert response.status_code == 201 and response.get_json()["status"] == "pending"
    response = client.post("/api/v1/tokens", json={"username": "alice", "password": "pw"})
    assert response.status_code == 201 and response.get_json()["token"] == "alice-token"
    assert rpc_calls("accounts.authenticate") == []
    # The accounts service rate-limits per client address, so the gateway passes it on.
    assert CALLS[-1] == ("accounts.issue_token", ({"username": "alice", "password": "pw"},
                                                  {"address": "127.0.0.1"}))


# -- request validation --------------------------------------------------------------------------

@pytest.mark.parametrize("body, bad_fields", [
    ({"email": "bob@example.org", "password": "correct horse battery"}, {"username"}),
    ({"username": "bob", "email": 42, "password": "correct horse battery"}, {"email"}),
    ({"username": "bob", "email": "bob@example.org", "password": "correct horse battery",
      "colour": "red"}, {"colour"}),
    (None, {"username", "email", "password"}),
])
def test_bad_signup_body_is_400_naming_fields_without_rpc(client, body, bad_fields):
    response = client.post("/api/v1/users", json=body)
    error = assert_error(response, 400, "invalid_input")
    assert set(error["fields"]) == bad_fields
    assert CALLS == []


def test_bad_instance_body_is_400_before_authentication(client):
    response = client.post("/api/v1/instances", headers=USER_AUTH,
                           json={"name": "Web 1", "flavor": "1", "image": 1, "key": 3})
    error = assert_error(response, 400, "invalid_input")
    assert set(error["fields"]) == {"name", "flavor"}
    assert CALLS == []


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"[1, 2"])
def test_malformed_json_is_400_invalid_json(client, raw):
    response = client.post("/api/v1/tokens", data=raw, content_type="application/json")
    assert_error(response, 400, "invalid_json")


def test_huge_body_is_413_json(client):
    response = client.post("/api/v1/tokens", data=b"x" * (2 * 1024 * 1024),
                           content_type="application/json")
    assert_error(response, 413, "request_entity_too_large")
    assert CALLS == []


def test_a_json_array_body_is_rejected(client):
    response = client.post("/api/v1/tokens", json=[1, 2])
    assert_error(response, 400, "invalid_input")


def test_valid_bodies_go_over_rpc_unchanged(client):
    response = client.post("/api/v1/keys", headers=USER_AUTH,
                           json={"name": "laptop", "public_key": PUBLIC_KEY})
    assert response.status_code == 201, response.get_json()
    body = {"name": "web-1", "flavor": 1, "image": 1, "key": 3}
    response = client.post("/api/v1/instances", headers=USER_AUTH, json=body)
    assert response.status_code == 202 and response.get_json()["state"] == "pending"
    # Raw body, not the loaded one: no `user_data: None` default added by the gateway.
    assert ("instances.create_instance", (USER, body)) in CALLS


def test_an_image_file_is_relayed_in_chunks_past_the_json_body_limit(client):
    from gateway.api.images import UPLOAD_CHUNK_BYTES as CHUNK
    body = bytes(range(256)) * (CHUNK * 5 // 2 // 256 + 3)  # 2.5 chunks: over the 1 MiB JSON limit
    response = client.put("/api/v1/images/1/file", headers=USER_AUTH, data=body,
                          content_type="application/octet-stream")
    assert response.status_code == 200, response.get_json()
    # The chunks may be written in any order (several in flight), all before the finish.
    assert CALLS[1] == ("storage.start_image_upload", (USER, 1, len(body), "file"))
    assert sorted(CALLS[2:5]) == [("storage.upload_image_chunk", (USER, 1, 0, CHUNK, "file")),
                                  ("storage.upload_image_chunk", (USER, 1, CHUNK, CHUNK, "file")),
                                  ("storage.upload_image_chunk", (USER, 1, 2 * CHUNK, len(body) - 2 * CHUNK, "file"))]
    assert CALLS[5:] == [("storage.finish_image_upload", (USER, 1, len(body), "file"))]


@pytest.mark.parametrize("part", ["kernel", "ramdisk"])
def test_a_kernel_and_a_ramdisk_are_relayed_as_their_part(client, part):
    response = client.put(f"/api/v1/images/1/{part}", headers=USER_AUTH, data=b"\x7fELF" * 10,
                          content_type="application/octet-stream")
    assert response.status_code == 200, response.get_json()
    assert CALLS[1:] == [("storage.start_image_upload", (USER, 1, 40, part)),
                         ("storage.upload_image_chunk", (USER, 1, 0, 40, part)),
                         ("storage.finish_image_upload", (USER, 1, 40, part))]


def test_an_image_file_must_come_as_octet_stream(client):
    response = client.put("/api/v1/images/1/file", headers=USER_AUTH, data=b"x", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")
    assert CALLS == []


# -- routing -------------------------------------------------------------------------------------

def test_unknown_route_is_404_json(client):
    assert_error(client.get("/api/v1/nothing", headers=USER_AUTH), 404, "not_found")
    assert CALLS == []


@pytest.mark.parametrize("path", ["/api/v1/instances/not-a-uuid", "/api/v1/instances/1234",
                                  "/api/v1/instances/not-a-uuid/metrics", "/api/v1/users/abc",
                                  "/api/v1/keys/-1", "/api/v1/keys/0",
                                  # beyond 64 bits: no database could hold it, so nothing has it
                                  "/api/v1/users/98240867459966894080", "/api/v1/keys/9223372036854775808",
                                  "/api/v1/projects/00017"])
def test_malformed_ids_are_404_without_rpc(client, path):
    assert_error(client.get(path, headers=USER_AUTH), 404, "not_found")
    assert CALLS == []


def test_wrong_method_is_405_json_with_allow(client):
    response = client.put("/api/v1/keys", headers=USER_AUTH)
    assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_every_contract_route_reaches_its_method(client):
    for method, path, status, call in [
        ("GET", "/api/v1/users", 200, ("accounts.list_users", (ADMIN, {}))),
        ("POST", "/api/v1/users/8/approve", 200, ("accounts.approve_user", (ADMIN, 8, {}))),
        ("GET", "/api/v1/users?status=pending", 200, ("accounts.list_users", (ADMIN, {"status": "pending"}))),
        ("GET", "/api/v1/keys", 200, ("accounts.list_keys", (ADMIN,))),
        ("DELETE", "/api/v1/keys/3", 200, ("accounts.delete_key", (ADMIN, 3))),
        ("GET", "/api/v1/flavors", 200, ("instances.list_flavors", ())),
        ("GET", "/api/v1/images", 200, ("storage.list_images", (ADMIN,))),
        ("GET", "/api/v1/images/5", 200, ("storage.show_image", (ADMIN, 5))),
        ("DELETE", "/api/v1/images/5", 200, ("storage.delete_image", (ADMIN, 5))),
        ("GET", "/api/v1/instances", 200, ("instances.list_instances", (ADMIN, False, None))),
        ("GET", "/api/v1/instances?include_deleted=true&project=4", 200,
         ("instances.list_instances", (ADMIN, True, 4))),
        ("GET", f"/api/v1/instances/{INSTANCE_ID}/actions", 200,
         ("instances.list_instance_actions", (ADMIN, INSTANCE_ID))),
        ("POST", "/api/v1/admin/reconcile", 200, ("instances.reconcile", (ADMIN,))),
        ("GET", "/api/v1/admin/reconcile?limit=5", 200, ("instances.list_reconcile_reports", (ADMIN, 5))),
        ("DELETE", f"/api/v1/instances/{INSTANCE_ID}", 202,
         ("instances.delete_instance", (ADMIN, INSTANCE_ID))),
    ]:
        CALLS.clear()
        response = client.open(path, method=method, headers=ADMIN_AUTH)
        assert response.status_code == status, (path, response.get_json())
        assert CALLS == [("accounts.authenticate", ("admin-token",)), call], path


def test_notification_preferences_are_the_callers_own(client):
    response = client.put("/api/v1/users/me/notifications", json={"instance": False}, headers=USER_AUTH)
    assert response.status_code == 200, response.get_json()
    assert CALLS[-1] == ("metrics.set_notification_preferences", (USER, {"instance": False}))
    CALLS.clear()
    response = client.put("/api/v1/users/me/notifications", json={"instance": "sometimes"}, headers=USER_AUTH)
    assert_error(response, 400, "invalid_input")
    assert "instance" in response.get_json()["error"]["fields"] and rpc_calls() == []


def test_a_bad_boolean_query_is_400_naming_it_without_rpc(client):
    response = client.get("/api/v1/instances?include_deleted=maybe", headers=ADMIN_AUTH)
    assert_error(response, 400, "invalid_input")
    assert response.get_json()["error"]["fields"] == {"include_deleted": ["Not a valid boolean (true or false)."]}
    assert rpc_calls("instances.list_instances") == []


def test_an_instance_shows_its_volumes_once_it_may_be_seen(client):
    response = client.get(f"/api/v1/instances/{INSTANCE_ID.upper()}", headers=ADMIN_AUTH)
    assert response.status_code == 200
    assert response.get_json()["volumes"] == [
        {"id": 5, "name": "data", "size_gib": 2, "device": "vdb", "attach_state": "attached"}]
    assert CALLS == [("accounts.authenticate", ("admin-token",)), ("instances.get_instance", (ADMIN, INSTANCE_ID)),
                     ("storage.list_instance_volumes", (INSTANCE_ID,))]
    CALLS.clear()
    response = client.get(f"/api/v1/instances/{MISSING_ID}", headers=ADMIN_AUTH)
    assert response.status_code == 404 and rpc_calls("storage.") == []


def test_metrics_check_ownership_first(client):
    response = client.get(f"/api/v1/instances/{INSTANCE_ID}/metrics?seconds=600",
                          headers=USER_AUTH)
    assert response.status_code == 200 and response.get_json()["end"] == 600
    assert rpc_calls() == ["accounts.authenticate", "instances.get_instance",
                           "metrics.get_instance_metrics"]

    CALLS.clear()
    response = client.get(f"/api/v1/instances/{FOREIGN_ID}/metrics", headers=USER_AUTH)
    assert_error(response, 403, "forbidden")
    assert "metrics.get_instance_metrics" not in rpc_calls()

    CALLS.clear()
    response = client.get(f"/api/v1/instances/{INSTANCE_ID}/metrics?seconds=lots",
                          headers=USER_AUTH)
    assert set(assert_error(response, 400, "invalid_input")["fields"]) == {"seconds"}
    assert CALLS == []

    CALLS.clear()
    client.get(f"/api/v1/instances/{INSTANCE_ID}/metrics", headers=USER_AUTH)
    assert CALLS[-1] == ("metrics.get_instance_metrics", (INSTANCE_ID, 3600))


# -- error mapping -------------------------------------------------------------------------------

def test_service_errors_keep_their_status_and_fields(client):
    assert_error(client.get("/api/v1/users", headers=USER_AUTH), 403, "forbidden")
    error = assert_error(client.post("/api/v1/users", json={
        "username": "taken", "email": "t@example.org", "password": "correct horse battery"}),
        409, "conflict")
    assert error["fields"] == {"username": ["already taken"]}
    assert_error(client.get("/api/v1/keys/99", headers=USER_AUTH), 404, "not_found")
    assert_error(client.get(f"/api/v1/instances/{MISSING_ID}", headers=USER_AUTH),
                 404, "not_found")
    assert_error(client.post("/api/v1/tokens", json={"username": "pending", "password": "x"}),
                 403, "forbidden")


def test_unexpected_service_error_is_500_without_details(client, caplog):
    response = client.get(f"/api/v1/instances/{BOOM_ID}", headers=USER_AUTH)
    error = assert_error(response, 500, "internal_error")
    text = response.get_data(as_text=True)
    assert "hunter2" not in text and "RuntimeError" not in text and "Traceback" not in text
    assert error["fields"] == {}
    assert "hunter2" in caplog.text  # ...but the operator can see it in the log


def test_rpc_timeout_is_504_and_the_proxy_is_replaced(client, pool):
    response = client.get(f"/api/v1/instances/{SLOW_ID}", headers=USER_AUTH)
    assert_error(response, 504, "gateway_timeout")
    # The next request gets a working proxy, not one still waiting for the late reply.
    response = client.get(f"/api/v1/instances/{INSTANCE_ID}", headers=USER_AUTH)
    assert response.status_code == 200
    # Let the slow worker finish: one killed at teardown would leave its message to be
    # redelivered to the next test's service.
    with eventlet.Timeout(10):
        while "instances.get_instance.done" not in rpc_calls():
            eventlet.sleep(0.1)


def test_service_not_running_is_503(container_factory, rabbit_config, pool):
    CALLS.clear()
    container_factory(Accounts, rabbit_config).start()
    # Earlier tests left a durable, consumer-less rpc-storage queue that would swallow the call.
    with Connection(rabbit_config["AMQP_URI"]) as conn:
        conn.default_channel.queue_delete("rpc-storage")
    client = create_app(dict(rabbit_config), rpc_pool=pool).test_client()
    response = client.get("/api/v1/images", headers=USER_AUTH)
    error = assert_error(response, 503, "service_unavailable")
    assert "storage" in error["message"]


def test_unreachable_broker_is_503():
    pool = RpcPool({"AMQP_URI": "pyamqp://guest:guest@127.0.0.1:1//"}, timeout=2)
    client = create_app({}, rpc_pool=pool).test_client()
    assert_error(client.get("/api/v1/flavors", headers=USER_AUTH), 503, "service_unavailable")
    assert client.get("/healthz").get_json() == {"status": "ok"}


# -- rpc pool ------------------------------------------------------------------------------------

def test_pool_reuses_started_proxies(client, pool):
    for _ in range(5):
        assert client.get("/api/v1/flavors", headers=USER_AUTH).status_code == 200
    assert pool._idle.qsize() == 1  # sequential requests share one proxy


def test_pool_serves_concurrent_requests_up_to_its_size(client, pool):
    results = eventlet.GreenPool().imap(
        lambda _: client.get("/api/v1/flavors", headers=USER_AUTH).status_code, range(6))
    assert list(results) == [200] * 6
    assert pool._idle.qsize() <= pool.size


def test_pool_discards_a_broken_proxy(services, pool):
    from gateway.rpc_pool import ServiceUnavailable
    with pytest.raises(ServiceUnavailable):
        with pool.checkout():
            raise ConnectionResetError("broker went away")
    assert pool._idle.qsize() == 0

    with pool.checkout() as rpc:
        first = rpc
    # A proxy whose connection dropped while idle is replaced at checkout.
    pool._idle.queue[0].wrapper._reply_listener.queue_consumer.connection.close()
    with pool.checkout() as rpc:
        assert rpc is not first
        assert rpc.instances.list_flavors()[0]["name"] == "small"


# -- openapi and metrics -------------------------------------------------------------------------

def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_openapi_document_covers_every_route(client, app):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.") and doc["info"]["title"]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {"type": "http",
                                                                  "scheme": "bearer"}
    schemas = doc["components"]["schemas"]
    for name in ("User", "Token", "Key", "Flavor", "Image", "Instance", "InstanceMetrics",
                 "Error", "SignupRequest", "TokenRequest", "AddKeyRequest",
                 "CreateInstanceRequest", "NewImageRequest", "SaveImageRequest", "InstanceAction", "ReconcileReport"):
        assert name in schemas, name
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas

    from gateway.api import api
    # The REST face's rules (the portal's pages are the blueprint's, "portal.*", walked elsewhere).
    rules = [r for r in app.url_map.iter_rules() if not r.endpoint.startswith("portal.")]
    assert len(rules) == len(api.routes) >= 55  # every declared route is served, and documented:
    for rule in rules:
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = doc["paths"][path][method.lower()]
            assert operation["responses"] and operation["summary"]
            assert {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"} == \
                set(rule.arguments)

    signup = doc["paths"]["/api/v1/users"]["post"]
    assert signup["security"] == []
    assert signup["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SignupRequest"}
    assert "201" in signup["responses"]
    listing = doc["paths"]["/api/v1/instances"]["get"]
    assert listing["security"] == [{"bearerAuth": []}]
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array", "items": {"$ref": "#/components/schemas/Instance"}}
    assert set(schemas["SignupRequest"]["required"]) == {"username", "email", "password"}
    user_path = doc["paths"]["/api/v1/users/{user_id}"]["get"]["parameters"][0]
    assert user_path["schema"] == {"type": "integer", "minimum": 1, "maximum": 2 ** 63 - 1}
    created = doc["paths"]["/api/v1/instances"]["post"]
    assert {"400", "401", "403", "413", "415", "503"} <= set(created["responses"])
    assert "429" in doc["paths"]["/api/v1/tokens"]["post"]["responses"]
    assert "text/csv" in doc["paths"]["/api/v1/users/import"]["post"]["requestBody"]["content"]
    # A body whose fields are all optional may be left out.
    assert doc["paths"]["/api/v1/users/{user_id}/approve"]["post"]["requestBody"]["required"] is False


def test_metrics_count_requests_per_endpoint_and_status(client):
    client.get("/api/v1/flavors", headers=USER_AUTH)
    client.get("/api/v1/flavors", headers=USER_AUTH)
    client.get("/api/v1/flavors")
    client.get("/no/such/page")
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            key = (sample.name, sample.labels.get("method"), sample.labels.get("endpoint"),
                   sample.labels.get("status"))
            samples[key] = sample.value
    assert samples[("labcloud_gateway_requests_total", "GET", "/api/v1/flavors", "200")] == 2
    assert samples[("labcloud_gateway_requests_total", "GET", "/api/v1/flavors", "401")] == 1
    assert samples[("labcloud_gateway_requests_total", "GET", "unmatched", "404")] == 1
    assert samples[("labcloud_gateway_request_duration_seconds_count", "GET",
                    "/api/v1/flavors", "200")] == 2


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert CALLS == []


# -- token cache ---------------------------------------------------------------------------------

def test_a_token_is_checked_once_per_cache_bound(services, pool, rabbit_config, audit):
    from gateway.token_cache import TokenCache
    app = create_app(dict(rabbit_config, TOKEN_CACHE_SECONDS=5), rpc_pool=pool, audit=audit)
    now = [100.0]
    app.extensions["token_cache"] = TokenCache(5, clock=lambda: now[0])
    client = app.test_client()
    for _ in range(3):
        assert client.get("/api/v1/flavors", headers=USER_AUTH).status_code == 200
    assert rpc_calls("accounts.authenticate") == ["accounts.authenticate"]
    now[0] += 5.01  # past the bound: asked again, so a revoked token stops working by then
    assert client.get("/api/v1/flavors", headers=USER_AUTH).status_code == 200
    assert rpc_calls("accounts.authenticate") == ["accounts.authenticate"] * 2
    # A refused token is never remembered: every try asks again.
    for _ in range(2):
        assert client.get("/api/v1/flavors", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert rpc_calls("accounts.authenticate") == ["accounts.authenticate"] * 4


def test_logout_forgets_the_token_on_this_gateway_at_once(services, pool, rabbit_config, audit):
    app = create_app(dict(rabbit_config, TOKEN_CACHE_SECONDS=5), rpc_pool=pool, audit=audit)
    client = app.test_client()
    assert client.get("/api/v1/flavors", headers=USER_AUTH).status_code == 200
    response = client.delete("/api/v1/tokens/current", headers=USER_AUTH)
    assert response.status_code == 200 and response.get_json() == {"revoked": True}
    assert ("accounts.revoke_token", ("alice-token",)) in CALLS
    assert app.extensions["token_cache"].get("alice-token") is None


def test_the_cache_bound_is_clamped_to_what_the_docs_promise():
    from gateway.token_cache import MAX_SECONDS, TokenCache
    assert TokenCache(3600).seconds == MAX_SECONDS == 10
    cache = TokenCache(5, max_entries=2)
    for token in ("a", "b", "c"):
        cache.put(token, {"id": 1})
    assert cache.get("a") is None and cache.get("c") == {"id": 1}  # oldest evicted first


# -- content types, limits, rate limits ----------------------------------------------------------

def test_a_body_in_the_wrong_content_type_is_415(client):
    response = client.post("/api/v1/tokens", data='{"username": "a", "password": "b"}',
                           content_type="text/plain")
    error = assert_error(response, 415, "unsupported_media_type")
    assert "application/json" in error["message"]
    response = client.post("/api/v1/users/import", headers=ADMIN_AUTH, json={"csv": "x"})
    assert_error(response, 415, "unsupported_media_type")
    assert rpc_calls("accounts.import_users") == []


def test_a_csv_body_goes_over_rpc_as_text(client):
    text = "username,email,full_name,course\nbob,bob@example.org,Bob,intro\n"
    response = client.post("/api/v1/users/import?project=3", headers=ADMIN_AUTH,
                           data=("\ufeff" + text).encode(), content_type="text/csv; charset=utf-8")
    assert response.status_code == 200 and response.get_json()["created"] == 1
    assert CALLS[-1] == ("accounts.import_users", (ADMIN, {"csv": text, "project": 3}))
    error = assert_error(client.post("/api/v1/users/import", headers=ADMIN_AUTH, data=b"\xff\xfe\x00",
                                     content_type="text/csv"), 400, "invalid_input")
    assert set(error["fields"]) == {"csv"}


def test_rate_limited_token_requests_are_429_with_retry_after(client):
    response = client.post("/api/v1/tokens", json={"username": "hammered", "password": "x"})
    assert_error(response, 429, "rate_limited")
    assert response.headers["Retry-After"] == "42"


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=99999999999999999999999"])
def test_out_of_range_query_integers_are_400_naming_them(client, query):
    response = client.get(f"/api/v1/admin/reconcile?{query}", headers=ADMIN_AUTH)
    assert set(assert_error(response, 400, "invalid_input")["fields"]) == {"limit"}
    assert rpc_calls("instances.list_reconcile_reports") == []


def test_huge_ids_in_bodies_are_400_naming_the_field(client):
    response = client.post("/api/v1/instances", headers=USER_AUTH, json={
        "name": "web-1", "flavor": -2444816538604869831771117584384, "image": 1, "key": 2 ** 64})
    assert set(assert_error(response, 400, "invalid_input")["fields"]) == {"flavor", "key"}
    assert CALLS == []


# -- audit trail ---------------------------------------------------------------------------------

def test_state_changing_requests_are_audited_and_reads_are_not(client, audit):
    client.get("/api/v1/instances", headers=USER_AUTH)
    assert audit.records == []
    client.delete(f"/api/v1/instances/{INSTANCE_ID}", headers=USER_AUTH,
                  environ_base={"REMOTE_ADDR": "10.1.2.3"})
    client.post("/api/v1/instances", headers=USER_AUTH, json={
        "name": "web-2", "flavor": 1, "image": 1, "key": 3, "project": 4})
    client.post("/api/v1/tokens", json={"username": "pending", "password": "secret-pw"})
    deleted, created, refused = audit.records
    assert deleted["user_id"] == 7 and deleted["username"] == "alice"
    assert deleted["method"] == "DELETE" and deleted["path"] == f"/api/v1/instances/{INSTANCE_ID}"
    assert deleted["action"] == "delete_instance" and deleted["status"] == 202
    assert deleted["result"] == "success" and deleted["address"] == "10.1.2.3"
    assert deleted["at"].endswith("+00:00")
    assert created["project_id"] == 4
    assert refused["user_id"] is None and refused["username"] == "pending"
    assert refused["result"] == "error" and refused["status"] == 403
    assert refused["message"] == "account not approved yet"
    assert "secret-pw" not in repr(audit.records)  # bodies are never recorded
    assert len({r["id"] for r in audit.records}) == 3  # ids make the stored log idempotent


def test_the_account_page_works_without_the_notifications_service(container_factory, rabbit_config, pool):
    """The password form must not depend on the metrics (notifications) service: without it, the
    page still answers and its mail panel says the settings cannot be read."""
    CALLS.clear()
    container_factory(Accounts, rabbit_config).start()
    with Connection(rabbit_config["AMQP_URI"]) as conn:  # no metrics service: no queue either
        conn.default_channel.queue_delete("rpc-metrics")
    client = create_app(dict(rabbit_config, TOKEN_CACHE_SECONDS=0), rpc_pool=pool).test_client()
    client.set_cookie("labcloud_session", USER_AUTH["Authorization"].split()[1])
    response = client.get("/account")
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    assert "Change my password" in page and "cannot be read right now" in page
    assert "Save my notifications" not in page
