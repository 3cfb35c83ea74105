"""The password policy and the argon2id hasher."""
import pytest

from common.errors import InvalidInput
from services.accounts import passwords
from services.accounts.models import UNUSABLE_PASSWORD


@pytest.mark.parametrize("password, username, reason", [
    ("short-pw1", None, "at least 10 characters"),
    ("x" * 1025, None, "at most 1024 characters"),
    ("my-ALICE-secret", "alice", "must not contain the username"),
    ("Password123", None, "common passwords"),
    ("abcabcabcabc", None, "5 different characters"),
    (None, None, "must be a string"),
])
def test_policy_names_the_reason(password, username, reason):
    with pytest.raises(InvalidInput) as err:
        passwords.check_policy(password, username)
    assert set(err.value.fields) == {"password"}
    assert any(reason in problem for problem in err.value.fields["password"])


def test_policy_accepts_good_passwords_and_reports_every_problem():
    passwords.check_policy("wonderland-42", "alice")
    passwords.check_policy("my-alice-secret")  # no username given: that rule is left out
    problems = passwords.policy_problems("bobbobbobbob", "bob")
    assert problems == ["must not contain the username", "must have at least 5 different characters"]


def test_hasher_uses_argon2id_and_never_raises_on_bad_input(hasher):
    stored = hasher.hash("wonderland-42")
    assert stored.startswith("$argon2id$") and "wonderland" not in stored
    assert hasher.verify(stored, "wonderland-42") and not hasher.verify(stored, "wonderland-43")
    for bad_hash in (UNUSABLE_PASSWORD, "", "$argon2id$garbage"):
        assert hasher.verify(bad_hash, "wonderland-42") is False
        assert hasher.needs_rehash(bad_hash) is False
    hasher.burn_verify_time("anything")  # returns without raising


def test_the_hasher_cost_is_configurable_and_a_different_cost_needs_rehash(hasher):
    stronger = passwords.Hasher(time_cost=2, memory_cost_kib=16, parallelism=1)
    stored = hasher.hash("wonderland-42")
    assert "m=8,t=1,p=1" in stored
    assert stronger.needs_rehash(stored) and not hasher.needs_rehash(stored)
    assert stronger.verify(stored, "wonderland-42")  # the cost is read from the hash itself
