"""Passwords: the policy a new password must meet, and hashing with argon2id.

Hashing costs tens of milliseconds of CPU and memory by design; `Hasher` blocks the thread that
calls it. The service never calls it on the eventlet hub: dependencies.Passwords runs every
method in a native thread (eventlet.tpool). Logic modules take a hasher as a parameter.
"""
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from common.errors import InvalidInput

MIN_LENGTH = 10
MAX_LENGTH = 1024  # only stops someone from making the server hash megabytes
MIN_DISTINCT_CHARACTERS = 5
# The most common passwords of at least MIN_LENGTH characters (shorter ones fail on length).
COMMON_PASSWORDS = frozenset({
    "1234567890", "12345678910", "0123456789", "0987654321", "1q2w3e4r5t", "qwertyuiop",
    "1qaz2wsx3edc", "password12", "password123", "password1234", "passw0rd123", "iloveyou12",
    "qwerty1234", "qwerty12345", "qwerty123456", "abcdefghij", "abcd123456", "123456789a",
    "a123456789", "letmein123", "welcome123", "administrator", "changeme123", "trustno1234",
    "football123", "baseball123", "superman123", "sunshine123", "princess123", "monkey12345",
    "dragon12345", "starwars123", "whatever123", "1234qwerasdf", "zaq12wsxcde", "asdfghjkl1",
    "labcloud123", "labcloud2026", "correcthorsebatterystaple",
})


def policy_problems(password, username=None):
    """The reasons `password` is refused (empty if it is acceptable). `username` None leaves out
    the rule that the password must not contain the username (the bootstrap admin's)."""
    if not isinstance(password, str):
        return ["must be a string"]
    if len(password) < MIN_LENGTH:
        return [f"must have at least {MIN_LENGTH} characters"]
    if len(password) > MAX_LENGTH:
        return [f"must have at most {MAX_LENGTH} characters"]
    problems = []
    if username and username.lower() in password.lower():
        problems.append("must not contain the username")
    if password.lower() in COMMON_PASSWORDS:
        problems.append("is one of the most common passwords")
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        problems.append(f"must have at least {MIN_DISTINCT_CHARACTERS} different characters")
    return problems


def check_policy(password, username=None, field="password"):
    """Raise InvalidInput naming `field` with every reason the password is refused."""
    problems = policy_problems(password, username)
    if problems:
        raise InvalidInput(f"{field} {'; '.join(problems)}", {field: problems})


class Hasher:
    """argon2id with the given cost (argon2-cffi's defaults, which follow RFC 9106, if None).
    Every method blocks the calling thread."""

    def __init__(self, time_cost=None, memory_cost_kib=None, parallelism=None):
        given = {"time_cost": time_cost, "memory_cost": memory_cost_kib, "parallelism": parallelism}
        self._argon2 = PasswordHasher(**{k: int(v) for k, v in given.items() if v is not None})
        self._dummy_hash = None

    def hash(self, password):
        return self._argon2.hash(password)

    def verify(self, password_hash, password):
        """True if `password` matches; never raises for a wrong password, a damaged hash or an
        account without a password (models.UNUSABLE_PASSWORD)."""
        try:
            return self._argon2.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash):
        """True when the hash was made with another cost than the configured one."""
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return False

    def burn_verify_time(self, password):
        """Spend the time one verification takes, for a user that does not exist (or has no
        password), so response times do not tell an attacker which usernames are real."""
        if self._dummy_hash is None:
            self._dummy_hash = self._argon2.hash("labcloud-no-such-user")
        self.verify(self._dummy_hash, password)
