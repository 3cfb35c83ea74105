"""Sign-up, approval and lookup of users against a migrated SQLite database."""
import pytest

from common.actors import load_actor
from common.errors import Conflict, Forbidden, InvalidInput, NotFound
from common.schemas import load
from services.accounts import memberships, projects, users
from services.accounts.bootstrap import ensure_admin
from services.accounts.dependencies import DEFAULT_PROJECT_QUOTA
from services.accounts.schemas import SignupRequest

from tests.accounts.conftest import ADMIN

PASSWORD = "s3cret-pass"


def sign_up(session, hasher, clock, username="alice", email="alice@example.org", password=PASSWORD,
            full_name=None):
    return users.signup(session, hasher, {"username": username, "email": email, "password": password,
                                          "full_name": full_name}, clock())


def test_signup_creates_a_pending_user_with_a_hashed_password(session, hasher, clock):
    user, created = sign_up(session, hasher, clock, email="Alice@Example.org", full_name="Alice L.")
    assert created and user.status == "pending" and user.role == "user"
    assert user.created_at == clock() and user.approved_at is None
    assert user.email == "alice@example.org" and user.full_name == "Alice L."
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash


def test_signup_applies_the_password_policy(session, hasher, clock):
    for password, reason in [("short-pw", "at least 10"), ("my-alice-pass", "username"),
                             ("password123", "common"), ("abababababab", "different")]:
        with pytest.raises(InvalidInput, match=reason) as err:
            sign_up(session, hasher, clock, password=password)
        assert set(err.value.fields) == {"password"}
    assert users.list_users(session, ADMIN) == []


def test_duplicate_username_or_email_is_a_conflict_naming_the_field(session, hasher, clock):
    sign_up(session, hasher, clock)
    with pytest.raises(Conflict) as err:
        sign_up(session, hasher, clock, email="other@example.org")
    assert set(err.value.fields) == {"username"}
    with pytest.raises(Conflict) as err:
        sign_up(session, hasher, clock, username="bob", email="ALICE@example.org")
    assert set(err.value.fields) == {"email"}
    # Same name and email but another password is someone else, not a redelivery.
    with pytest.raises(Conflict):
        sign_up(session, hasher, clock, password="different-pass")


def test_redelivered_signup_returns_the_first_user(session, hasher, clock):
    first, _ = sign_up(session, hasher, clock)
    again, created = sign_up(session, hasher, clock)
    assert not created and again.id == first.id


def test_signup_request_rules():
    good = {"username": "alice", "email": "alice@example.org", "password": "1234567890"}
    assert load(SignupRequest, good) == {**good, "full_name": None}
    for field, value in [("username", "Alice"), ("username", "al"), ("username", "1abc"),
                         ("username", "a" * 33), ("email", "not-an-email"), ("password", ""),
                         ("password", "x" * 1025), ("full_name", "x" * 129)]:
        with pytest.raises(InvalidInput) as err:
            load(SignupRequest, {**good, field: value})
        assert set(err.value.fields) == {field}, (field, value)
    with pytest.raises(InvalidInput) as err:
        load(SignupRequest, {**good, "role": "admin"})
    assert "role" in err.value.fields


def test_only_admins_approve_and_approving_twice_is_harmless(session, hasher, clock):
    user, _ = sign_up(session, hasher, clock)
    bob, _ = sign_up(session, hasher, clock, username="bob", email="bob@example.org")
    with pytest.raises(Forbidden):
        users.approve_user(session, {"id": bob.id, "username": "bob", "role": "user"}, user.id,
                           clock())
    assert session.get(type(user), user.id).status == "pending"
    approved, changed = users.approve_user(session, ADMIN, user.id, clock())
    assert changed and approved.status == "active" and approved.approved_at == clock()
    clock.advance(hours=1)
    again, changed = users.approve_user(session, ADMIN, user.id, clock())
    assert not changed and again.status == "active" and again.approved_at == approved.approved_at
    for bad in (9999, "1", 2 ** 64):
        with pytest.raises(NotFound):
            users.approve_user(session, ADMIN, bad, clock())


def test_approval_can_join_a_project(session, hasher, clock):
    user, _ = sign_up(session, hasher, clock)
    project, _ = projects.create_project(session, ADMIN, {"name": "cs101"}, DEFAULT_PROJECT_QUOTA, clock())
    with pytest.raises(NotFound) as err:
        users.approve_user(session, ADMIN, user.id, clock(), project.id + 1)
    assert set(err.value.fields) == {"project"} and user.status == "pending"
    approved, changed = users.approve_user(session, ADMIN, user.id, clock(), project.id)
    assert changed and memberships.memberships_of(session, user.id) == [{"id": project.id, "role": "member"}]
    assert users.approve_user(session, ADMIN, user.id, clock(), project.id)[1] is False


def test_get_user_is_for_self_or_admin_and_list_for_admins(session, hasher, clock):
    alice, _ = sign_up(session, hasher, clock)
    bob, _ = sign_up(session, hasher, clock, username="bob", email="bob@example.org")
    as_alice = {"id": alice.id, "username": "alice", "role": "user"}
    assert users.get_user(session, as_alice, alice.id).username == "alice"
    assert users.get_user(session, ADMIN, bob.id).username == "bob"
    with pytest.raises(NotFound):
        users.get_user(session, as_alice, bob.id)
    with pytest.raises(Forbidden):
        users.list_users(session, as_alice)
    ensure_admin(session, "admin-password", hasher)
    assert [u.username for u in users.list_users(session, ADMIN)] == ["alice", "bob", "admin"]
    users.approve_user(session, ADMIN, bob.id, clock())
    assert [u.username for u in users.list_users(session, ADMIN, "pending")] == ["alice"]
    assert [u.username for u in users.list_users(session, ADMIN, "active")] == ["bob", "admin"]


def test_actor_shape_is_validated():
    assert load_actor({"id": 3, "username": "a", "role": "user"})["id"] == 3
    for bad in [None, "admin", {"id": "3", "username": "a", "role": "user"},
                {"id": 3, "username": "a", "role": "root"}, {"id": 3, "username": "a"}]:
        with pytest.raises(InvalidInput) as err:
            load_actor(bad)
        assert set(err.value.fields) == {"actor"}
