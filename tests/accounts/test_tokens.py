"""Issuing and checking bearer tokens, with a clock the test moves."""
import datetime as dt
import hashlib

import pytest
from sqlalchemy import select

from common.errors import Forbidden, Unauthorized
from services.accounts import tokens, users
from services.accounts.models import Token, User

ADMIN = {"id": 0, "username": "admin", "role": "admin"}
PASSWORD = "s3cret-pass"


@pytest.fixture
def alice(session, clock):
    user, _ = users.signup(session, "alice", "alice@example.org", PASSWORD, clock())
    return user


def test_pending_user_gets_forbidden_only_with_the_right_password(session, clock, alice):
    with pytest.raises(Forbidden, match="awaits approval"):
        tokens.issue_token(session, "alice", PASSWORD, clock())
    with pytest.raises(Unauthorized):
        tokens.issue_token(session, "alice", "wrong-password", clock())


def test_wrong_username_and_wrong_password_look_the_same(session, clock, alice):
    users.approve_user(session, ADMIN, alice.id, clock())
    with pytest.raises(Unauthorized) as wrong_user:
        tokens.issue_token(session, "nobody", PASSWORD, clock())
    with pytest.raises(Unauthorized) as wrong_password:
        tokens.issue_token(session, "alice", "wrong-password", clock())
    assert str(wrong_user.value) == str(wrong_password.value) == tokens.BAD_CREDENTIALS


def test_token_is_stored_hashed_and_expires(session, clock, alice):
    users.approve_user(session, ADMIN, alice.id, clock())
    issued = tokens.issue_token(session, "alice", PASSWORD, clock(), ttl_hours=12)
    assert issued["expires_at"] == clock() + dt.timedelta(hours=12)
    assert len(issued["token"]) >= 43
    stored = session.scalars(select(Token.token_hash)).all()
    assert stored == [hashlib.sha256(issued["token"].encode()).hexdigest()]
    assert tokens.authenticate(session, issued["token"], clock()) == {
        "id": alice.id, "username": "alice", "role": "user"}
    clock.advance(hours=11, minutes=59)
    assert tokens.authenticate(session, issued["token"], clock())["id"] == alice.id
    clock.advance(minutes=1)
    with pytest.raises(Unauthorized, match="expired"):
        tokens.authenticate(session, issued["token"], clock())


def test_unknown_tokens_and_inactive_users_are_refused(session, clock, alice):
    users.approve_user(session, ADMIN, alice.id, clock())
    issued = tokens.issue_token(session, "alice", PASSWORD, clock())
    for bad in ["", None, 42, issued["token"] + "x", tokens.token_hash(issued["token"])]:
        with pytest.raises(Unauthorized):
            tokens.authenticate(session, bad, clock())
    session.get(User, alice.id).status = "disabled"
    session.commit()
    with pytest.raises(Unauthorized):
        tokens.authenticate(session, issued["token"], clock())
    with pytest.raises(Forbidden, match="disabled"):
        tokens.issue_token(session, "alice", PASSWORD, clock())


def test_expired_tokens_are_pruned_when_a_new_one_is_issued(session, clock, alice):
    users.approve_user(session, ADMIN, alice.id, clock())
    old = tokens.issue_token(session, "alice", PASSWORD, clock(), ttl_hours=1)
    clock.advance(hours=2)
    new = tokens.issue_token(session, "alice", PASSWORD, clock(), ttl_hours=1)
    assert session.scalars(select(Token.token_hash)).all() == [tokens.token_hash(new["token"])]
    assert old["token"] != new["token"]
