"""User administration over the real broker: every event (once, only when something changed),
token revocation on logout, password change, suspension and deletion, class list imports."""
import eventlet
import pytest
from nameko.events import event_handler
from nameko.standalone.rpc import ServiceRpcProxy

from common.errors import InvalidInput, Unauthorized

from tests.accounts.conftest import ADMIN_PASSWORD, login, wait_until

PASSWORD = "wonderland-42"
EVENTS = ("user_signed_up", "user_approved", "user_rejected", "user_created", "user_imported",
          "user_suspended", "user_enabled", "user_deleted", "user_password_reset")


class AccountsEvents:
    """Records every accounts event, as the services and a mailer would receive them."""
    name = "accounts_events"
    seen = []


def _recorder(event):
    def record(self, payload):
        self.seen.append((event, payload))
    record.__name__ = f"on_{event}"
    return event_handler("accounts", event)(record)


for _event in EVENTS:
    setattr(AccountsEvents, f"on_{_event}", _recorder(_event))


@pytest.fixture
def events(container_factory, accounts):
    AccountsEvents.seen = []
    container_factory(AccountsEvents, accounts).start()
    return AccountsEvents.seen


def token_of(link):
    return link.split("/set-password?token=", 1)[1]


def test_user_administration_announces_each_change_once(accounts, events):
    with ServiceRpcProxy("accounts", accounts) as rpc:
        admin = login(rpc, "admin", ADMIN_PASSWORD)
        course = rpc.create_project(admin, {"name": "cs101"})

        pat = rpc.signup({"username": "pat", "email": "pat@example.org", "password": PASSWORD})
        rejected = rpc.reject_user(admin, pat["id"], {"reason": "no course"})
        assert (rejected["status"], rejected["reason"]) == ("rejected", "no course")
        assert rpc.reject_user(admin, pat["id"], {"reason": "no course"}) == rejected

        ada = rpc.create_user(admin, {"username": "ada", "email": "ada@example.org",
                                      "full_name": "Ada L.", "project": course["id"]})
        assert ada["status"] == "active" and ada["password_link"].startswith(
            "http://127.0.0.1:8080/set-password?token=")
        assert rpc.set_password({"token": token_of(ada["password_link"]), "password": PASSWORD})["id"] == ada["id"]
        bob = rpc.create_user(admin, {"username": "bob", "email": "bob@example.org", "password": PASSWORD})
        assert bob["password_link"] is None

        suspended = rpc.suspend_user(admin, ada["id"], {"reason": "exam"})
        assert suspended["status"] == "suspended"
        rpc.suspend_user(admin, ada["id"], {})
        assert rpc.enable_user(admin, ada["id"])["status"] == "active"
        rpc.enable_user(admin, ada["id"])

        reset = rpc.reset_password(admin, ada["id"])
        assert set(reset) == {"password_link", "expires_at"}
        report = rpc.import_users(admin, {"csv": "username,email,full_name\ncid,cid@example.org,Cid\n"
                                                 "dee,dee@example.org,\n", "project": course["id"]})
        assert (report["created"], report["existing"]) == (2, 0)

        deleted = rpc.delete_user(admin, ada["id"], {"transfer_to": bob["id"]})
        assert deleted["status"] == "deleted"
        assert rpc.delete_user(admin, ada["id"], {"transfer_to": bob["id"]}) == deleted
        with pytest.raises(InvalidInput) as err:
            rpc.delete_user(admin, bob["id"], {"transfer_to": bob["id"]})
        assert set(err.value.fields) == {"transfer_to"}

        wait_until(lambda: len(events) >= 11)
        eventlet.sleep(0.3)  # time for any event a repeat might (wrongly) have sent
        payloads = {}
        for name, payload in events:
            payloads.setdefault(name, []).append(payload)
        assert payloads["user_rejected"] == [{"user": rejected, "reason": "no course"}]
        created = {p["user"]["username"]: p["password_link"] for p in payloads["user_created"]}
        assert created == {"ada": ada["password_link"], "bob": None}
        assert payloads["user_suspended"] == [{"user": suspended, "reason": "exam"}]
        assert [p["status"] for p in payloads["user_enabled"]] == ["active"]
        assert payloads["user_password_reset"][0]["password_link"] == reset["password_link"]
        assert sorted((p["user"]["username"], p["project_id"]) for p in payloads["user_imported"]) == [
            ("cid", course["id"]), ("dee", course["id"])]
        assert all(p["password_link"].startswith("http://127.0.0.1:8080/") for p in payloads["user_imported"])
        # A repeated delete announces it again (a crash between commit and dispatch heals by retrying).
        assert payloads["user_deleted"] == [{"user_id": ada["id"], "username": "ada", "transfer_to": bob["id"]}] * 2
    # one event per change, none for the repeats (but the delete's)
    assert len(events) == 11 and sorted(name for name, _ in events) == sorted([
        "user_signed_up", "user_rejected", "user_created", "user_created", "user_suspended",
        "user_enabled", "user_password_reset", "user_imported", "user_imported", "user_deleted", "user_deleted"])


def test_every_way_a_token_ends(accounts):
    with ServiceRpcProxy("accounts", accounts) as rpc:
        admin = login(rpc, "admin", ADMIN_PASSWORD)
        ada = rpc.create_user(admin, {"username": "ada", "email": "ada@example.org", "password": PASSWORD})
        credentials = {"username": "ada", "password": PASSWORD}

        def issue():
            return rpc.issue_token(credentials, {"address": "192.0.2.4"})

        logout, kept = issue(), issue()
        assert rpc.revoke_token(logout["token"]) == {"revoked": True}
        assert rpc.revoke_token(logout["token"]) == {"revoked": True}
        with pytest.raises(Unauthorized, match="revoked"):
            rpc.authenticate(logout["token"])
        me = rpc.authenticate(kept["token"])
        listed = rpc.list_tokens(me, ada["id"])
        assert [(t["id"], t["address"]) for t in listed] == [(kept["id"], "192.0.2.4")]
        assert set(listed[0]) == {"id", "created_at", "expires_at", "address"}
        assert rpc.revoke_user_token(admin, ada["id"], kept["id"]) == {"revoked": True}
        with pytest.raises(Unauthorized):
            rpc.authenticate(kept["token"])

        before = issue()
        assert rpc.change_password(rpc.authenticate(before["token"]), ada["id"],
                                   {"current_password": PASSWORD, "password": "new-secret-42"}) == {"changed": True}
        with pytest.raises(Unauthorized, match="revoked"):
            rpc.authenticate(before["token"])
        credentials["password"] = "new-secret-42"

        before = issue()
        rpc.suspend_user(admin, ada["id"], {})
        with pytest.raises(Unauthorized):
            rpc.authenticate(before["token"])
        rpc.enable_user(admin, ada["id"])

        before = issue()
        rpc.delete_user(admin, ada["id"], {})
        with pytest.raises(Unauthorized):
            rpc.authenticate(before["token"])
        with pytest.raises(Unauthorized):
            issue()
