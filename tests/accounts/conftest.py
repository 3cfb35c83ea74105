"""Fixtures of the accounts tests: a migrated database, a clock the test moves, keys."""
import datetime as dt

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy.orm import sessionmaker

from common.db import make_engine


class FakeClock:
    """Stands in for common.clock.Clock's callable; `advance` moves time forward."""

    def __init__(self, start=dt.datetime(2030, 1, 1, 12, 0, 0)):
        self.at = start

    def __call__(self):
        return self.at

    def advance(self, **delta):
        self.at += dt.timedelta(**delta)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def accounts_db_url(migrated_database):
    return migrated_database("services.accounts")


@pytest.fixture
def engine(accounts_db_url):
    engine = make_engine(accounts_db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine):
    with sessionmaker(bind=engine, expire_on_commit=False)() as session:
        yield session


class KeyLines:
    """OpenSSH public key lines made from freshly generated keys."""

    @staticmethod
    def ed25519(comment="alice@laptop"):
        # paramiko cannot generate ed25519 keys; cryptography (its own backend) can.
        key = ed25519.Ed25519PrivateKey.generate().public_key()
        line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        return f"{line.decode()} {comment}".rstrip()

    @staticmethod
    def rsa(bits=2048, comment="alice@desktop"):
        key = paramiko.RSAKey.generate(bits)
        return f"{key.get_name()} {key.get_base64()} {comment}".rstrip()

    @staticmethod
    def ecdsa(bits=256):
        key = paramiko.ECDSAKey.generate(bits=bits)
        return f"{key.get_name()} {key.get_base64()}"


@pytest.fixture
def key_lines():
    return KeyLines()
