"""SSH keys per user against a migrated SQLite database."""
import pytest

from common.errors import Conflict, InvalidInput, NotFound
from common.schemas import load
from services.accounts import keys
from services.accounts.openssh import parse_public_key
from services.accounts.schemas import AddKeyRequest


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
