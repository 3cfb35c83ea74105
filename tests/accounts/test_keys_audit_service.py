"""Generated and shared keys, and the audit log fed by the gateway's events, over the real broker."""
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter

from common.errors import Conflict, Forbidden, InvalidInput, NotFound

from tests.accounts.conftest import ADMIN_PASSWORD, login

PASSWORD = "wonderland-42"


def test_a_generated_key_shared_with_a_course_is_what_members_may_use(accounts):
    with ServiceRpcProxy("accounts", accounts) as rpc:
        admin = login(rpc, "admin", ADMIN_PASSWORD)
        course = rpc.create_project(admin, {"name": "cs101"})
        people = {}
        for name in ("teacher", "student", "outsider"):
            rpc.create_user(admin, {"username": name, "email": f"{name}@example.org", "password": PASSWORD})
        rpc.add_member(admin, course["id"], {"user": login(rpc, "teacher", PASSWORD)["id"], "role": "manager"})
        rpc.add_member(admin, course["id"], {"user": login(rpc, "student", PASSWORD)["id"]})
        for name in ("teacher", "student", "outsider"):
            people[name] = login(rpc, name, PASSWORD)

        made = rpc.generate_key(people["teacher"], {"name": "class", "type": "rsa", "project": course["id"]})
        assert set(made) == {"id", "name", "fingerprint", "public_key", "user_id", "project",
                             "created_at", "private_key"}
        private = serialization.load_ssh_private_key(made["private_key"].encode(), password=None)
        assert private.key_size == 3072 and made["project"] == course["id"]
        stored = {k: v for k, v in made.items() if k != "private_key"}
        assert rpc.get_key(people["student"], made["id"]) == stored  # as instances asks for it
        assert rpc.list_keys(people["student"]) == [stored]
        with pytest.raises(NotFound):
            rpc.get_key(people["outsider"], made["id"])
        with pytest.raises(Forbidden):
            rpc.delete_key(people["student"], made["id"])
        with pytest.raises(Conflict):
            rpc.generate_key(people["teacher"], {"name": "class"})
        with pytest.raises(NotFound):
            rpc.generate_key(people["outsider"], {"name": "mine", "project": course["id"]})
        with pytest.raises(InvalidInput) as err:
            rpc.generate_key(people["outsider"], {"name": "mine", "type": "dsa"})
        assert set(err.value.fields) == {"type"}
        ed = rpc.generate_key(people["outsider"], {"name": "mine"})
        assert ed["public_key"].startswith("ssh-ed25519 ") and ed["project"] is None


def test_audit_records_from_the_gateway_are_stored_once(start_accounts):
    container = start_accounts()
    record = {"id": str(uuid.uuid4()), "at": "2030-01-01T12:00:00+00:00", "user_id": 7,
              "username": "ada", "project_id": 3, "method": "DELETE", "path": "/api/v1/instances/x",
              "action": "delete_instance", "status": 404, "result": "error", "address": "192.0.2.1",
              "message": "no instance x"}
    dispatch = event_dispatcher(container.config)
    for _ in range(2):  # a redelivery
        with entrypoint_waiter(container, "record_audit"):
            dispatch("gateway", "request_audited", record)
    with ServiceRpcProxy("accounts", container.config) as rpc:
        admin = login(rpc, "admin", ADMIN_PASSWORD)
        assert rpc.list_audit(admin, {"user": 7}) == [record]
        assert rpc.list_audit(admin, {"since": "2030-01-01T12:00:01+00:00"}) == []
        with pytest.raises(Forbidden):
            rpc.list_audit({**admin, "role": "user"}, {})
        with pytest.raises(InvalidInput) as err:
            rpc.list_audit(admin, {"limit": 5000})
        assert set(err.value.fields) == {"limit"}
