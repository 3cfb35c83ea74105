"""Sign-up and approval against a migrated SQLite database."""
import pytest

from common.errors import Conflict, Forbidden, InvalidInput, NotFound
from common.schemas import load
from services.accounts import users
from common.actors import load_actor
from services.accounts.bootstrap import ensure_admin
from services.accounts.schemas import SignupRequest

ADMIN = {"id": 0, "username": "admin", "role": "admin"}


def sign_up(session, clock, username="alice", email="alice@example.org", password="s3cret-pass"):
    return users.signup(session, username, email, password, clock())


def test_signup_creates_a_pending_user_with_a_hashed_password(session, clock):
    user, created = sign_up(session, clock, email="Alice@Example.org")
    assert created and user.status == "pending" and user.role == "user"
    assert user.created_at == clock() and user.approved_at is None
    assert user.email == "alice@example.org"
    assert user.password_hash.startswith("$argon2id$") and "s3cret-pass" not in user.password_hash


def test_duplicate_username_or_email_is_a_conflict_naming_the_field(session, clock):
    sign_up(session, clock)
    with pytest.raises(Conflict) as err:
        sign_up(session, clock, email="other@example.org")
    assert set(err.value.fields) == {"username"}
    with pytest.raises(Conflict) as err:
        sign_up(session, clock, username="bob", email="ALICE@example.org")
    assert set(err.value.fields) == {"email"}
    # Same name and email but another password is someone else, not a redelivery.
    with pytest.raises(Conflict):
        sign_up(session, clock, password="different-pass")


def test_redelivered_signup_returns_the_first_user(session, clock):
    first, _ = sign_up(session, clock)
    again, created = sign_up(session, clock)
    assert not created and again.id == first.id


def test_signup_request_rules():
    good = {"username": "alice", "email": "alice@example.org", "password": "12345678"}
    assert load(SignupRequest, good) == good
    for field, value in [("username", "Alice"), ("username", "al"), ("username", "1abc"),
                         ("username", "a" * 33), ("email", "not-an-email"),
                         ("password", "1234567")]:
        with pytest.raises(InvalidInput) as err:
            load(SignupRequest, {**good, field: value})
        assert set(err.value.fields) == {field}, (field, value)
    with pytest.raises(InvalidInput) as err:
        load(SignupRequest, {**good, "role": "admin"})
    assert "role" in err.value.fields


def test_only_admins_approve_and_approving_twice_is_harmless(session, clock):
    user, _ = sign_up(session, clock)
    bob, _ = sign_up(session, clock, username="bob", email="bob@example.org")
    with pytest.raises(Forbidden):
        users.approve_user(session, {"id": bob.id, "username": "bob", "role": "user"}, user.id,
                           clock())
    assert session.get(type(user), user.id).status == "pending"
    approved, changed = users.approve_user(session, ADMIN, user.id, clock())
    assert changed and approved.status == "active" and approved.approved_at == clock()
    clock.advance(hours=1)
    again, changed = users.approve_user(session, ADMIN, user.id, clock())
    assert not changed and again.status == "active" and again.approved_at == approved.approved_at
    with pytest.raises(NotFound):
        users.approve_user(session, ADMIN, 9999, clock())


def test_get_user_is_for_self_or_admin_and_list_for_admins(session, clock):
    alice, _ = sign_up(session, clock)
    bob, _ = sign_up(session, clock, username="bob", email="bob@example.org")
    as_alice = {"id": alice.id, "username": "alice", "role": "user"}
    assert users.get_user(session, as_alice, alice.id).username == "alice"
    assert users.get_user(session, ADMIN, bob.id).username == "bob"
    with pytest.raises(NotFound):
        users.get_user(session, as_alice, bob.id)
    with pytest.raises(Forbidden):
        users.list_users(session, as_alice)
    ensure_admin(session, "admin-password")
    assert [u.username for u in users.list_users(session, ADMIN)] == ["alice", "bob", "admin"]


def test_actor_shape_is_validated():
    assert load_actor({"id": 3, "username": "a", "role": "user"})["id"] == 3
    for bad in [None, "admin", {"id": "3", "username": "a", "role": "user"},
                {"id": 3, "username": "a", "role": "root"}, {"id": 3, "username": "a"}]:
        with pytest.raises(InvalidInput) as err:
            load_actor(bad)
        assert set(err.value.fields) == {"actor"}
