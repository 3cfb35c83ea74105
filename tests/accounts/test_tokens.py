"""Issuing, checking and revoking bearer tokens, with a clock the test moves."""
import hashlib

import pytest
from sqlalchemy import select

from common.errors import Forbidden, NotFound, Unauthorized
from services.accounts import projects, tokens
from services.accounts.dependencies import DEFAULT_PROJECT_QUOTA
from services.accounts.models import Token
from services.accounts.passwords import Hasher

from tests.accounts.conftest import ADMIN

PASSWORD = "s3cret-pass"
HOUR = 3600


@pytest.fixture
def alice(make_user):
    return make_user("alice", password=PASSWORD)


def issue(session, hasher, clock, username="alice", password=PASSWORD, ttl=HOUR, address=None):
    return tokens.issue_token(session, hasher, username, password, clock(), ttl, address)


def test_inactive_users_are_told_why_only_with_the_right_password(session, hasher, clock, make_user):
    for status, told in [("pending", "awaits approval"), ("suspended", "suspended"),
                         ("rejected", "rejected")]:
        make_user(status, status=status, password=PASSWORD)
        with pytest.raises(Forbidden, match=told):
            issue(session, hasher, clock, status)
        with pytest.raises(Unauthorized):
            issue(session, hasher, clock, status, "wrong-password")


def test_unknown_deleted_and_passwordless_users_look_like_a_wrong_password(session, hasher, clock,
                                                                          make_user, alice):
    make_user("gone", status="deleted", password=PASSWORD)
    make_user("nopass")  # created by an admin, link not used yet
    messages = set()
    for username, password in [("nobody", PASSWORD), ("alice", "wrong-password"),
                               ("gone", PASSWORD), ("nopass", "!"), ("nopass", "")]:
        with pytest.raises(Unauthorized) as err:
            issue(session, hasher, clock, username, password)
        messages.add(str(err.value))
    assert messages == {tokens.BAD_CREDENTIALS}


def test_token_is_stored_hashed_with_its_address_and_expires(session, hasher, clock, alice):
    issued = issue(session, hasher, clock, ttl=12 * HOUR, address="192.0.2.7")
    assert (issued["expires_at"] - clock()).total_seconds() == 12 * HOUR
    assert len(issued["token"]) >= 43
    row = session.scalars(select(Token)).one()
    assert row.token_hash == hashlib.sha256(issued["token"].encode()).hexdigest()
    assert (row.id, row.address, row.created_at) == (issued["id"], "192.0.2.7", clock())
    assert tokens.authenticate(session, issued["token"], clock()) == {
        "id": alice.id, "username": "alice", "role": "user", "projects": []}
    clock.advance(hours=11, minutes=59)
    assert tokens.authenticate(session, issued["token"], clock())["id"] == alice.id
    clock.advance(minutes=1)
    with pytest.raises(Unauthorized, match="expired"):
        tokens.authenticate(session, issued["token"], clock())


def test_authenticate_carries_the_project_roles(session, hasher, clock, alice, make_user):
    bob = make_user("bob")
    first, _ = projects.create_project(session, ADMIN, {"name": "cs101", "managers": [alice.id]},
                                       DEFAULT_PROJECT_QUOTA, clock())
    second, _ = projects.create_project(session, ADMIN, {"name": "cs102"}, DEFAULT_PROJECT_QUOTA, clock())
    projects.add_member(session, ADMIN, second.id, alice.id, "member", None, clock())
    projects.add_member(session, ADMIN, second.id, bob.id, "member", None, clock())
    token = issue(session, hasher, clock)["token"]
    assert tokens.authenticate(session, token, clock())["projects"] == [
        {"id": first.id, "role": "manager"}, {"id": second.id, "role": "member"}]
    projects.remove_member(session, ADMIN, second.id, alice.id)
    # No cache: the next request already sees the change.
    assert tokens.authenticate(session, token, clock())["projects"] == [{"id": first.id, "role": "manager"}]


def test_unknown_tokens_and_inactive_users_are_refused(session, hasher, clock, alice):
    issued = issue(session, hasher, clock)
    for bad in ["", None, 42, issued["token"] + "x", tokens.token_hash(issued["token"])]:
        with pytest.raises(Unauthorized):
            tokens.authenticate(session, bad, clock())
    alice.status = "suspended"
    session.commit()
    with pytest.raises(Unauthorized, match="no longer active"):
        tokens.authenticate(session, issued["token"], clock())


def test_logout_revokes_one_token_and_says_so_again(session, hasher, clock, alice):
    kept, dropped = issue(session, hasher, clock), issue(session, hasher, clock)
    assert tokens.revoke_token(session, dropped["token"], clock()) is True
    assert tokens.revoke_token(session, dropped["token"], clock()) is True  # a repeat
    assert tokens.revoke_token(session, "never-issued", clock()) is False
    with pytest.raises(Unauthorized, match="revoked"):
        tokens.authenticate(session, dropped["token"], clock())
    assert tokens.authenticate(session, kept["token"], clock())["id"] == alice.id


def test_revoke_all_ends_every_session_of_the_user(session, hasher, clock, alice, make_user):
    make_user("bob", password=PASSWORD)
    mine = [issue(session, hasher, clock) for _ in range(3)]
    bobs = issue(session, hasher, clock, "bob")
    assert tokens.revoke_all(session, alice.id, clock()) == 3
    session.commit()
    for issued in mine:
        with pytest.raises(Unauthorized, match="revoked"):
            tokens.authenticate(session, issued["token"], clock())
    assert tokens.authenticate(session, bobs["token"], clock())["username"] == "bob"


def test_list_and_revoke_a_users_tokens_self_or_admin(session, hasher, clock, alice, as_actor,
                                                      make_user):
    bob = as_actor(make_user("bob"))
    first = issue(session, hasher, clock, address="192.0.2.1")
    second = issue(session, hasher, clock, address="192.0.2.2")
    clock.advance(minutes=1)
    me = as_actor(alice)
    listed = tokens.list_tokens(session, me, alice.id, clock())
    assert [(t.id, t.address) for t in listed] == [(first["id"], "192.0.2.1"), (second["id"], "192.0.2.2")]
    assert [t.id for t in tokens.list_tokens(session, ADMIN, alice.id, clock())] == [first["id"], second["id"]]
    for call in (lambda: tokens.list_tokens(session, bob, alice.id, clock()),
                 lambda: tokens.revoke_user_token(session, bob, alice.id, first["id"], clock()),
                 lambda: tokens.list_tokens(session, ADMIN, 9999, clock()),
                 lambda: tokens.list_tokens(session, ADMIN, 2 ** 64, clock())):
        with pytest.raises(NotFound):
            call()
    assert tokens.revoke_user_token(session, me, alice.id, first["id"], clock()) is True
    assert tokens.revoke_user_token(session, ADMIN, bob["id"], second["id"], clock()) is False  # not bob's
    assert tokens.revoke_user_token(session, me, alice.id, "x", clock()) is False
    assert [t.id for t in tokens.list_tokens(session, me, alice.id, clock())] == [second["id"]]
    clock.advance(hours=1)
    assert tokens.list_tokens(session, me, alice.id, clock()) == []  # expired ones are not listed


def test_expired_tokens_are_pruned_when_a_new_one_is_issued(session, hasher, clock, alice):
    old = issue(session, hasher, clock)
    clock.advance(hours=2)
    new = issue(session, hasher, clock)
    assert session.scalars(select(Token.token_hash)).all() == [tokens.token_hash(new["token"])]
    assert old["token"] != new["token"]


def test_a_hash_of_another_cost_is_upgraded_at_login(session, clock, make_user):
    cheap, other = Hasher(time_cost=1, memory_cost_kib=8, parallelism=1), Hasher(
        time_cost=2, memory_cost_kib=16, parallelism=1)
    user = make_user("carol", password=PASSWORD)
    before = user.password_hash
    tokens.issue_token(session, other, "carol", PASSWORD, clock(), HOUR)
    session.refresh(user)
    assert user.password_hash != before and "m=16,t=2" in user.password_hash
    assert cheap.verify(user.password_hash, PASSWORD)
