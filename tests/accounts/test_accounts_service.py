"""The accounts service over a real RabbitMQ node and a migrated SQLite database: users, tokens
and keys."""
import datetime as dt

import pytest
from nameko.events import event_handler
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter

from common.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from services.accounts.openssh import parse_public_key

from tests.accounts.conftest import ADMIN_PASSWORD, login

ALICE = {"username": "alice", "email": "alice@example.org", "password": "wonderland-42"}


class EventRecorder:
    """Listens to the accounts events the way other services would."""
    name = "accounts_event_recorder"
    seen = []

    @event_handler("accounts", "user_signed_up")
    def on_signed_up(self, payload):
        self.seen.append(("user_signed_up", payload))

    @event_handler("accounts", "user_approved")
    def on_approved(self, payload):
        self.seen.append(("user_approved", payload))


@pytest.fixture
def recorder(container_factory, accounts):
    EventRecorder.seen = []
    container = container_factory(EventRecorder, accounts)
    container.start()
    return container


def test_signup_approval_and_tokens(accounts, recorder, clock):
    with ServiceRpcProxy("accounts", accounts) as rpc:
        with entrypoint_waiter(recorder, "on_signed_up"):
            alice = rpc.signup(ALICE)
        assert alice["status"] == "pending" and alice["approved_at"] is None
        assert set(alice) == {"id", "username", "email", "full_name", "role", "status", "reason",
                              "created_at", "approved_at"}
        assert EventRecorder.seen == [("user_signed_up", alice)]

        with pytest.raises(Forbidden, match="awaits approval"):
            rpc.issue_token({"username": "alice", "password": ALICE["password"]})

        admin = login(rpc, "admin", ADMIN_PASSWORD)
        assert admin["role"] == "admin" and admin["username"] == "admin"
        assert [p["role"] for p in admin["projects"]] == ["manager"]  # the bootstrap's project
        as_alice = {"id": alice["id"], "username": "alice", "role": "user", "projects": []}
        with pytest.raises(Forbidden):
            rpc.approve_user(as_alice, alice["id"])

        with entrypoint_waiter(recorder, "on_approved"):
            approved = rpc.approve_user(admin, alice["id"])
        assert approved["status"] == "active" and approved["approved_at"]
        assert EventRecorder.seen[-1] == ("user_approved", approved)
        assert rpc.approve_user(admin, alice["id"]) == approved  # idempotent, no second event

        issued = rpc.issue_token({"username": "alice", "password": ALICE["password"]},
                                 {"address": "192.0.2.9"})
        assert set(issued) == {"id", "token", "expires_at", "user_id", "username"}
        assert issued["user_id"] == alice["id"] and issued["username"] == "alice"
        expires = dt.datetime.fromisoformat(issued["expires_at"])
        # RFC 3339 with an offset; TOKEN_TTL_SECONDS from the config
        assert expires == (clock() + dt.timedelta(hours=2)).replace(tzinfo=dt.timezone.utc)
        assert rpc.authenticate(issued["token"]) == as_alice
        assert rpc.get_user(as_alice, alice["id"])["email"] == "alice@example.org"
        with pytest.raises(Forbidden):
            rpc.list_users(as_alice)
        assert [u["username"] for u in rpc.list_users(admin)] == ["admin", "alice"]
        assert [u["username"] for u in rpc.list_users(admin, {"status": "pending"})] == []

        clock.advance(hours=2, seconds=1)
        with pytest.raises(Unauthorized, match="expired"):
            rpc.authenticate(issued["token"])
        with pytest.raises(Unauthorized):
            rpc.authenticate("not-a-token")
        with pytest.raises(Unauthorized) as err:
            rpc.issue_token({"username": "alice", "password": "wrong-password"})
        assert err.value.http_status == 401
    assert [name for name, _ in EventRecorder.seen] == ["user_signed_up", "user_approved"]


def test_keys_over_rpc_and_bad_requests_name_the_fields(accounts, key_lines):
    with ServiceRpcProxy("accounts", accounts) as rpc:
        admin = login(rpc, "admin", ADMIN_PASSWORD)
        people = {}
        for name in ("alice", "bob"):
            user = rpc.signup({"username": name, "email": f"{name}@example.org",
                               "password": "wonderland-42"})
            rpc.approve_user(admin, user["id"])
            people[name] = login(rpc, name, "wonderland-42")
        alice, bob = people["alice"], people["bob"]

        ed = key_lines.ed25519()
        laptop = rpc.add_key(alice, {"name": "laptop", "public_key": ed})
        assert set(laptop) == {"id", "name", "fingerprint", "public_key", "user_id", "project",
                               "created_at"}
        assert laptop["public_key"] == ed and laptop["user_id"] == alice["id"]
        assert laptop["fingerprint"] == parse_public_key(ed).fingerprint
        assert laptop["fingerprint"].startswith("SHA256:") and "=" not in laptop["fingerprint"]
        assert rpc.add_key(alice, {"name": "laptop", "public_key": ed}) == laptop  # redelivery
        desktop = rpc.add_key(alice, {"name": "desktop", "public_key": key_lines.rsa(2048)})
        assert desktop["public_key"].startswith("ssh-rsa ")

        with pytest.raises(InvalidInput) as err:
            rpc.add_key(alice, {"name": "junk", "public_key": "ssh-ed25519 garbage=="})
        assert set(err.value.fields) == {"public_key"}
        with pytest.raises(InvalidInput) as err:
            rpc.add_key(alice, {"name": "old", "public_key": key_lines.rsa(1024)})
        assert "2048" in err.value.fields["public_key"][0]
        with pytest.raises(Conflict) as err:
            rpc.add_key(alice, {"name": "laptop", "public_key": key_lines.ed25519()})
        assert err.value.http_status == 409 and set(err.value.fields) == {"name"}

        assert [k["name"] for k in rpc.list_keys(alice)] == ["laptop", "desktop"]
        assert rpc.list_keys(bob) == [] and rpc.list_keys(admin) == []
        with pytest.raises(NotFound):
            rpc.get_key(bob, laptop["id"])
        assert rpc.delete_key(bob, laptop["id"]) == {"deleted": False}
        assert rpc.get_key(admin, laptop["id"]) == laptop
        assert rpc.delete_key(alice, laptop["id"]) == {"deleted": True}
        assert rpc.delete_key(alice, laptop["id"]) == {"deleted": False}
        with pytest.raises(NotFound):
            rpc.get_key(alice, laptop["id"])

        # Bad requests name every bad field; clashes name the field taken.
        with pytest.raises(InvalidInput) as err:
            rpc.signup({"username": "A", "email": "nope", "password": "", "role": "admin"})
        assert set(err.value.fields) == {"username", "email", "password", "role"}
        with pytest.raises(InvalidInput) as err:
            rpc.signup({"username": "carol", "email": "carol@example.org", "password": "carol-password"})
        assert err.value.fields == {"password": ["must not contain the username"]}
        with pytest.raises(Conflict) as err:
            rpc.signup({"username": "alice", "email": "other@example.org", "password": "wonderland-42"})
        assert err.value.fields == {"username": ["already taken"]}
        with pytest.raises(InvalidInput) as err:
            rpc.list_keys({"id": 1, "username": "x", "role": "root"})
        assert set(err.value.fields) == {"actor"}
        with pytest.raises(InvalidInput) as err:
            rpc.issue_token({"username": "alice", "password": "x"}, {"address": "x" * 65})
        assert set(err.value.fields) == {"address"}
