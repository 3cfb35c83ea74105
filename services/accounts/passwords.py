"""Password hashing with argon2id (argon2-cffi's defaults, which follow RFC 9106)."""
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8

_hasher = PasswordHasher()
_dummy_hash = None


def hash_password(password):
    return _hasher.hash(password)


def verify_password(password_hash, password):
    """True if `password` matches; never raises for a wrong password or a damaged hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash):
    return _hasher.check_needs_rehash(password_hash)


def burn_verify_time(password):
    """Spend the time one verification takes, for a user that does not exist, so response
    times do not tell an attacker which usernames are real."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("labcloud-no-such-user")
    verify_password(_dummy_hash, password)
