"""SSH keys per user, shared with projects, generated, against a migrated SQLite database."""
import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from common.errors import Conflict, Forbidden, InvalidInput, NotFound
from common.schemas import load
from services.accounts import keys, openssh, projects
from services.accounts.dependencies import DEFAULT_PROJECT_QUOTA
from services.accounts.models import SshKey
from services.accounts.openssh import parse_public_key
from services.accounts.schemas import AddKeyRequest

from tests.accounts.conftest import ADMIN


@pytest.fixture
def people(make_user, as_actor):
    made = {name: as_actor(make_user(name)) for name in ("alice", "bob")}
    made["admin"] = {"id": 999, "username": "admin", "role": "admin", "projects": []}
    return made


def test_add_key_stores_normalised_line_and_fingerprint(session, clock, people, key_lines):
    line = key_lines.ed25519()
    key, created = keys.add_key(session, people["alice"], "laptop", "  " + line + "\n", clock())
    assert created and key.name == "laptop" and key.public_key == line
    assert key.fingerprint == parse_public_key(line).fingerprint
    assert key.fingerprint.startswith("SHA256:")
    rsa, _ = keys.add_key(session, people["alice"], "desktop", key_lines.rsa(), clock())
    assert rsa.public_key.startswith("ssh-rsa ")
    assert [k.name for k in keys.list_keys(session, people["alice"])] == ["laptop", "desktop"]


def test_bad_keys_are_invalid_input_naming_public_key(session, clock, people, key_lines):
    for bad in ["garbage", key_lines.rsa(1024)]:
        with pytest.raises(InvalidInput) as err:
            keys.add_key(session, people["alice"], "k", bad, clock())
        assert set(err.value.fields) == {"public_key"}
    assert keys.list_keys(session, people["alice"]) == []


def test_add_key_request_reports_every_bad_field(key_lines):
    with pytest.raises(InvalidInput) as err:
        load(AddKeyRequest, {"name": "has space", "public_key": "ssh-rsa AAAA"})
    assert set(err.value.fields) == {"name", "public_key"}
    good = {"name": "laptop", "public_key": key_lines.ed25519()}
    assert load(AddKeyRequest, good) == {**good, "project": None}


def test_names_are_unique_per_user_and_re_adding_is_idempotent(session, clock, people, key_lines):
    line = key_lines.ed25519()
    first, _ = keys.add_key(session, people["alice"], "laptop", line, clock())
    again, created = keys.add_key(session, people["alice"], "laptop", line, clock())
    assert not created and again.id == first.id
    with pytest.raises(Conflict) as err:
        keys.add_key(session, people["alice"], "laptop", key_lines.ed25519(), clock())
    assert set(err.value.fields) == {"name"}
    # Another user may use the same name (and even the same key).
    bobs, created = keys.add_key(session, people["bob"], "laptop", line, clock())
    assert created and bobs.id != first.id


def test_others_keys_are_invisible_but_admins_see_them(session, clock, people, key_lines):
    alices, _ = keys.add_key(session, people["alice"], "laptop", key_lines.ed25519(), clock())
    assert keys.list_keys(session, people["bob"]) == []
    with pytest.raises(NotFound):
        keys.get_key(session, people["bob"], alices.id)
    assert keys.delete_key(session, people["bob"], alices.id) is False
    assert keys.get_key(session, people["alice"], alices.id).id == alices.id
    assert keys.get_key(session, people["admin"], alices.id).id == alices.id
    assert keys.list_keys(session, people["admin"]) == []  # admins list only their own
    assert keys.delete_key(session, people["admin"], alices.id) is True
    assert keys.delete_key(session, people["alice"], alices.id) is False
    with pytest.raises(NotFound):
        keys.get_key(session, people["alice"], alices.id)
    with pytest.raises(NotFound):
        keys.get_key(session, people["alice"], True)


@pytest.fixture
def course(session, clock, make_user, as_actor):
    """cs101: alice and carol are members; bob is not."""
    project, _ = projects.create_project(session, ADMIN, {"name": "cs101"}, DEFAULT_PROJECT_QUOTA, clock())
    people = {name: make_user(name) for name in ("alice", "bob", "carol")}
    for name in ("alice", "carol"):
        projects.add_member(session, ADMIN, project.id, people[name].id, "member", None, clock())
    return project, {name: as_actor(user) for name, user in people.items()}


def test_a_key_shared_with_a_project_is_usable_by_its_members(session, clock, key_lines, course):
    project, people = course
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    shared, _ = keys.add_key(session, alice, "class-key", key_lines.ed25519(), clock(), project.id)
    private, _ = keys.add_key(session, alice, "mine", key_lines.ed25519(), clock())
    assert shared.project_id == project.id
    assert [k.name for k in keys.list_keys(session, carol)] == ["class-key"]
    assert keys.get_key(session, carol, shared.id).id == shared.id
    for actor, key in ((carol, private), (bob, shared), (bob, private)):
        with pytest.raises(NotFound):
            keys.get_key(session, actor, key.id)
    assert keys.list_keys(session, bob) == []
    with pytest.raises(Forbidden):
        keys.delete_key(session, carol, shared.id)  # she sees it but does not own it
    assert keys.delete_key(session, bob, shared.id) is False


def test_sharing_needs_membership_and_hides_other_projects(session, clock, key_lines, course):
    project, people = course
    with pytest.raises(NotFound):
        keys.add_key(session, people["bob"], "k", key_lines.ed25519(), clock(), project.id)
    with pytest.raises(NotFound):
        keys.add_key(session, people["alice"], "k", key_lines.ed25519(), clock(), project.id + 1)
    assert keys.list_keys(session, people["bob"]) == []


def fake_generator(calls):
    def generate(key_type, comment=""):
        calls.append((key_type, comment))
        return openssh.generate_key_pair(key_type, comment)
    return generate


@pytest.mark.parametrize("key_type, public_type", [("ed25519", "ssh-ed25519"), ("rsa", "ssh-rsa")])
def test_generate_returns_a_private_key_once_and_stores_only_the_public_one(
        session, clock, people, key_type, public_type):
    calls = []
    key, private_pem = keys.generate_key(session, people["alice"], fake_generator(calls), "made",
                                         key_type, clock())
    assert calls == [(key_type, "alice@labcloud")]
    assert private_pem.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    loaded = serialization.load_ssh_private_key(private_pem.encode(), password=None)
    public = loaded.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                              serialization.PublicFormat.OpenSSH).decode()
    assert key.public_key == f"{public} alice@labcloud" and key.public_key.startswith(public_type)
    if key_type == "rsa":
        assert loaded.key_size == 3072
    stored = session.scalars(select(SshKey)).one()
    assert "PRIVATE" not in stored.public_key and stored.fingerprint == parse_public_key(public).fingerprint
    with pytest.raises(Conflict):
        keys.generate_key(session, people["alice"], fake_generator(calls), "made", key_type, clock())
    assert len(calls) == 1  # refused before generating


def test_hand_over_renames_until_the_name_is_free():
    taken = {"laptop", "laptop-ada", "laptop-ada-2"}
    assert keys._free_name("laptop", "ada", taken) == "laptop-ada-3"
    assert keys._free_name("desktop", "ada", taken) == "desktop"
    long = "k" * 64
    renamed = keys._free_name(long, "ada", {long})
    assert len(renamed) == 64 and renamed.endswith("-ada")
