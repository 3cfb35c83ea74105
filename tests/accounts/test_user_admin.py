"""An administrator's changes to users (create, reject, suspend, enable, delete), password changes,
resets and one-time links, against a migrated SQLite database."""
import datetime as dt

import pytest
from sqlalchemy import select

from common.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from services.accounts import keys, memberships, password_links, projects, tokens, users
from services.accounts.dependencies import DEFAULT_PROJECT_QUOTA, Settings
from services.accounts.models import UNUSABLE_PASSWORD, PasswordLink, SshKey, User

from tests.accounts.conftest import ADMIN

PASSWORD = "wonderland-42"
SETTINGS = Settings(public_url="https://cloud.example", password_link_hours=72)
HOUR = 3600


def log_in(session, hasher, clock, username, password=PASSWORD):
    return tokens.issue_token(session, hasher, username, password, clock(), HOUR)["token"]


def link_token(link):
    prefix = "https://cloud.example/set-password?token="
    assert link.startswith(prefix)
    return link[len(prefix):]


@pytest.fixture
def course(session, clock):
    project, _ = projects.create_project(session, ADMIN, {"name": "cs101"}, DEFAULT_PROJECT_QUOTA, clock())
    return project


# ----- create -----------------------------------------------------------------------------------

def test_admin_creates_an_active_user_with_a_password(session, hasher, clock, course):
    request = {"username": "ada", "email": "Ada@Example.org", "full_name": "Ada L.",
               "password": PASSWORD, "project": course.id, "role": "manager"}
    user, link, created = users.create_user(session, hasher, ADMIN, request, SETTINGS, clock())
    assert created and link is None
    assert (user.status, user.email, user.full_name, user.approved_at) == (
        "active", "ada@example.org", "Ada L.", clock())
    assert memberships.memberships_of(session, user.id) == [{"id": course.id, "role": "manager"}]
    assert log_in(session, hasher, clock, "ada")
    again, link, created = users.create_user(session, hasher, ADMIN, request, SETTINGS, clock())
    assert (again.id, link, created) == (user.id, None, False)
    with pytest.raises(Conflict) as err:
        users.create_user(session, hasher, ADMIN, {**request, "password": "another-pass-1"},
                          SETTINGS, clock())
    assert set(err.value.fields) == {"username"}


def test_without_a_password_the_user_gets_a_one_time_link(session, hasher, clock):
    request = {"username": "ada", "email": "ada@example.org"}
    user, link, created = users.create_user(session, hasher, ADMIN, request, SETTINGS, clock())
    assert created and user.password_hash == UNUSABLE_PASSWORD
    assert link["expires_at"] == clock() + dt.timedelta(hours=72)
    token = link_token(link["password_link"])
    stored = session.scalars(select(PasswordLink.token_hash)).all()
    assert stored == [tokens.token_hash(token)]  # only the hash is kept
    with pytest.raises(Unauthorized):
        log_in(session, hasher, clock, "ada", "")
    # A repeat while no password is set: a fresh link, the first one still works.
    _, second, created = users.create_user(session, hasher, ADMIN, request, SETTINGS, clock())
    assert not created and second["password_link"] != link["password_link"]
    assert password_links.set_password(session, hasher, token, PASSWORD, clock()).id == user.id
    assert log_in(session, hasher, clock, "ada")


def test_create_is_for_admins_and_checks_names_and_projects(session, hasher, clock, make_user, as_actor):
    teacher = as_actor(make_user("teacher"))
    with pytest.raises(Forbidden):
        users.create_user(session, hasher, teacher, {"username": "ada", "email": "a@example.org"},
                          SETTINGS, clock())
    with pytest.raises(NotFound) as err:
        users.create_user(session, hasher, ADMIN, {"username": "ada", "email": "a@example.org",
                                                   "project": 999}, SETTINGS, clock())
    assert set(err.value.fields) == {"project"}
    with pytest.raises(Conflict) as err:
        users.create_user(session, hasher, ADMIN, {"username": "ada", "email": "teacher@example.org"},
                          SETTINGS, clock())
    assert set(err.value.fields) == {"email"}
    with pytest.raises(InvalidInput) as err:
        users.create_user(session, hasher, ADMIN, {"username": "ada", "email": "a@example.org",
                                                   "password": "ada-is-here-1"}, SETTINGS, clock())
    assert set(err.value.fields) == {"password"}
    assert users.find_by_username(session, "ada") is None


# ----- reject, suspend, enable ------------------------------------------------------------------

def test_reject_a_pending_sign_up_with_a_reason(session, hasher, clock, make_user):
    pending = make_user("pat", status="pending", password=PASSWORD)
    user, changed = users.reject_user(session, ADMIN, pending.id, "not in any course")
    assert changed and (user.status, user.status_reason) == ("rejected", "not in any course")
    assert users.reject_user(session, ADMIN, pending.id, "other words")[1] is False
    assert user.status_reason == "not in any course"
    with pytest.raises(Forbidden, match="rejected: not in any course"):
        log_in(session, hasher, clock, "pat")
    active = make_user("ada")
    with pytest.raises(Conflict) as err:
        users.reject_user(session, ADMIN, active.id, "too late")
    assert err.value.fields == {"status": ["active"]}
    # An admin may still change their mind.
    assert users.approve_user(session, ADMIN, pending.id, clock())[0].status == "active"


def test_suspend_revokes_every_token_and_enable_lets_the_user_back(session, hasher, clock, make_user):
    ada = make_user("ada", password=PASSWORD)
    issued = [log_in(session, hasher, clock, "ada") for _ in range(2)]
    with pytest.raises(Forbidden):
        users.suspend_user(session, {**ADMIN, "id": ada.id, "role": "user"}, ada.id, None, clock())
    user, changed = users.suspend_user(session, ADMIN, ada.id, "left the course", clock())
    assert changed and user.status == "suspended"
    for token in issued:
        with pytest.raises(Unauthorized, match="revoked"):
            tokens.authenticate(session, token, clock())
    with pytest.raises(Forbidden, match="suspended: left the course"):
        log_in(session, hasher, clock, "ada")
    assert users.suspend_user(session, ADMIN, ada.id, None, clock())[1] is False
    user, changed = users.enable_user(session, ADMIN, ada.id)
    assert changed and user.status == "active" and user.status_reason is None
    assert users.enable_user(session, ADMIN, ada.id)[1] is False
    for token in issued:  # old tokens stay revoked
        with pytest.raises(Unauthorized):
            tokens.authenticate(session, token, clock())
    assert tokens.authenticate(session, log_in(session, hasher, clock, "ada"), clock())["id"] == ada.id


def test_status_changes_are_refused_from_the_wrong_status_and_on_oneself(session, clock, make_user):
    pending = make_user("pat", status="pending")
    with pytest.raises(Conflict):
        users.suspend_user(session, ADMIN, pending.id, None, clock())
    with pytest.raises(Conflict):
        users.enable_user(session, ADMIN, pending.id)
    me = make_user("boss", role="admin")
    with pytest.raises(Conflict):
        users.suspend_user(session, {**ADMIN, "id": me.id}, me.id, None, clock())
    with pytest.raises(Conflict):
        users.delete_user(session, {**ADMIN, "id": me.id}, me.id, None, clock())
    for bad in (999, "2", 2 ** 64, True):
        with pytest.raises(NotFound):
            users.suspend_user(session, ADMIN, bad, None, clock())


# ----- delete -----------------------------------------------------------------------------------

def test_delete_keeps_the_row_and_removes_access_memberships_and_keys(
        session, hasher, clock, make_user, as_actor, key_lines, course):
    ada = make_user("ada", password=PASSWORD)
    projects.add_member(session, ADMIN, course.id, ada.id, "member", None, clock())
    keys.add_key(session, as_actor(ada), "laptop", key_lines.ed25519(), clock())
    token = log_in(session, hasher, clock, "ada")
    user, changed = users.delete_user(session, ADMIN, ada.id, None, clock())
    assert changed and user.status == "deleted" and session.get(User, ada.id) is not None
    with pytest.raises(Unauthorized):
        tokens.authenticate(session, token, clock())
    with pytest.raises(Unauthorized, match="invalid username or password"):
        log_in(session, hasher, clock, "ada")
    assert memberships.memberships_of(session, ada.id) == []
    assert session.scalars(select(SshKey)).all() == []
    assert users.delete_user(session, ADMIN, ada.id, None, clock())[1] is False  # a repeat
    with pytest.raises(Conflict) as err:  # the username stays taken
        users.signup(session, hasher, {"username": "ada", "email": "new@example.org",
                                       "password": PASSWORD}, clock())
    assert set(err.value.fields) == {"username"}
    with pytest.raises(Conflict):
        users.approve_user(session, ADMIN, ada.id, clock())


def test_delete_with_transfer_hands_keys_over_renaming_clashes(session, clock, make_user, as_actor,
                                                              key_lines):
    ada, bob = make_user("ada"), make_user("bob")
    for name in ("laptop", "desktop"):
        keys.add_key(session, as_actor(ada), name, key_lines.ed25519(), clock())
    keys.add_key(session, as_actor(bob), "laptop", key_lines.ed25519(), clock())
    users.delete_user(session, ADMIN, ada.id, bob.id, clock())
    owned = {(k.user_id, k.name) for k in session.scalars(select(SshKey))}
    assert owned == {(bob.id, "laptop"), (bob.id, "laptop-ada"), (bob.id, "desktop")}


def test_transfer_goes_to_another_active_user_only(session, clock, make_user):
    ada, pending = make_user("ada"), make_user("pat", status="pending")
    for heir in (ada.id, pending.id, 999, 2 ** 64):
        with pytest.raises(InvalidInput) as err:
            users.delete_user(session, ADMIN, ada.id, heir, clock())
        assert set(err.value.fields) == {"transfer_to"}
    assert session.get(User, ada.id).status == "active"


# ----- passwords --------------------------------------------------------------------------------

def test_change_password_needs_the_current_one_and_revokes_every_token(session, hasher, clock,
                                                                      make_user, as_actor):
    ada = make_user("ada", password=PASSWORD)
    me = as_actor(ada)
    token = log_in(session, hasher, clock, "ada")
    with pytest.raises(InvalidInput) as err:
        users.change_password(session, hasher, me, ada.id, "wrong-current", "new-secret-42", clock())
    assert set(err.value.fields) == {"current_password"}
    with pytest.raises(InvalidInput) as err:
        users.change_password(session, hasher, me, ada.id, PASSWORD, "ada-secret-42", clock())
    assert err.value.fields == {"password": ["must not contain the username"]}
    assert tokens.authenticate(session, token, clock())["id"] == ada.id  # nothing changed yet
    assert users.change_password(session, hasher, me, ada.id, PASSWORD, "new-secret-42", clock())
    with pytest.raises(Unauthorized, match="revoked"):
        tokens.authenticate(session, token, clock())
    assert log_in(session, hasher, clock, "ada", "new-secret-42")
    # A repeat of the same request: the password already is the new one.
    assert users.change_password(session, hasher, me, ada.id, PASSWORD, "new-secret-42", clock())


def test_only_the_user_changes_their_password(session, hasher, clock, make_user, as_actor):
    ada, bob = make_user("ada", password=PASSWORD), as_actor(make_user("bob"))
    with pytest.raises(NotFound):
        users.change_password(session, hasher, bob, ada.id, PASSWORD, "new-secret-42", clock())
    with pytest.raises(Forbidden):
        users.change_password(session, hasher, ADMIN, ada.id, PASSWORD, "new-secret-42", clock())


def test_reset_voids_the_password_and_tokens_and_the_link_works_once(session, hasher, clock, make_user):
    ada = make_user("ada", password=PASSWORD)
    token = log_in(session, hasher, clock, "ada")
    with pytest.raises(Forbidden):
        users.reset_password(session, {**ADMIN, "id": ada.id, "role": "user"}, ada.id, SETTINGS, clock())
    user, link = users.reset_password(session, ADMIN, ada.id, SETTINGS, clock())
    with pytest.raises(Unauthorized):
        tokens.authenticate(session, token, clock())
    with pytest.raises(Unauthorized):
        log_in(session, hasher, clock, "ada")
    secret = link_token(link["password_link"])
    with pytest.raises(InvalidInput) as err:
        password_links.set_password(session, hasher, secret, "password123", clock())
    assert set(err.value.fields) == {"password"}
    clock.advance(hours=71)
    assert password_links.set_password(session, hasher, secret, "brand-new-42", clock()).id == ada.id
    assert log_in(session, hasher, clock, "ada", "brand-new-42")
    # The same request again returns the user; the link is spent for anything else.
    assert password_links.set_password(session, hasher, secret, "brand-new-42", clock()).id == ada.id
    with pytest.raises(InvalidInput) as err:
        password_links.set_password(session, hasher, secret, "other-secret-42", clock())
    assert set(err.value.fields) == {"token"}


def test_links_expire_and_using_one_voids_the_others(session, hasher, clock, make_user):
    ada = make_user("ada", password=PASSWORD)
    first = link_token(users.reset_password(session, ADMIN, ada.id, SETTINGS, clock())[1]["password_link"])
    second = link_token(users.reset_password(session, ADMIN, ada.id, SETTINGS, clock())[1]["password_link"])
    clock.advance(hours=72)
    for token in (first, "", "no-such-link"):
        with pytest.raises(InvalidInput) as err:
            password_links.set_password(session, hasher, token, "brand-new-42", clock())
        assert set(err.value.fields) == {"token"}
    clock.advance(hours=-1)
    password_links.set_password(session, hasher, second, "brand-new-42", clock())
    with pytest.raises(InvalidInput):
        password_links.set_password(session, hasher, first, "brand-new-42x", clock())
