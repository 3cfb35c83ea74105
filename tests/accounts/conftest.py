"""Fixtures of the accounts tests: a migrated database, a clock the test moves, a cheap password
hasher, users in given states, keys."""
import datetime as dt

import paramiko
import pytest
from nameko.testing.services import replace_dependencies
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy.orm import sessionmaker

from common.db import make_engine
from services.accounts import passwords
from services.accounts.bootstrap import ensure_admin
from services.accounts.memberships import memberships_of
from services.accounts.models import UNUSABLE_PASSWORD, User

# argon2id at its lowest cost: the tests hash hundreds of passwords. (The hash-off-the-hub test
# and the bootstrap command use the real cost.)
CHEAP_HASH = {"time_cost": 1, "memory_cost_kib": 8, "parallelism": 1}
ADMIN = {"id": 10 ** 9, "username": "admin", "role": "admin", "projects": []}
ADMIN_PASSWORD = "admin-password"


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


@pytest.fixture(scope="session")
def hasher():
    return passwords.Hasher(**CHEAP_HASH)


def actor_of(user, projects=()):
    """The actor dict authenticate would return for `user` with these [{id, role}]."""
    return {"id": user.id, "username": user.username, "role": user.role, "projects": list(projects)}


@pytest.fixture
def make_user(session, hasher, clock):
    """make_user("alice", status="active", password=None, role="user") -> User, committed."""
    def make(username, status="active", password=None, role="user", email=None, full_name=None):
        user = User(username=username, email=email or f"{username}@example.org", role=role,
                    status=status, full_name=full_name, created_at=clock(),
                    password_hash=hasher.hash(password) if password else UNUSABLE_PASSWORD,
                    approved_at=clock() if status == "active" else None)
        session.add(user)
        session.commit()
        return user
    return make


@pytest.fixture
def as_actor(session):
    """as_actor(user) -> the actor authenticate would return now (its project roles read from
    the database)."""
    def actor(user):
        return actor_of(user, memberships_of(session, user.id))
    return actor


@pytest.fixture
def accounts_config(service_config, accounts_db_url):
    """The accounts service's config for service tests; the bootstrap admin exists."""
    engine = make_engine(accounts_db_url)
    ensure_admin(engine, ADMIN_PASSWORD, passwords.Hasher(**CHEAP_HASH))
    engine.dispose()
    return service_config(DATABASE_URL=accounts_db_url, PASSWORD_HASH=CHEAP_HASH,
                          TOKEN_TTL_SECONDS=7200)


@pytest.fixture
def start_accounts(container_factory, accounts_config, clock):
    """start_accounts(replace={dependency: object}, **config) -> a started accounts container
    using the FakeClock (and the replacements given)."""
    from services.accounts.service import AccountsService

    def start(replace=None, **extra):
        container = container_factory(AccountsService, dict(accounts_config, **extra))
        replace_dependencies(container, clock=clock, **(replace or {}))
        container.start()
        return container
    return start


@pytest.fixture
def accounts(start_accounts):
    """The config of a started accounts service (for ServiceRpcProxy)."""
    return start_accounts().config


def login(rpc, username, password, address=None):
    """The actor of a fresh token of `username`."""
    issued = rpc.issue_token({"username": username, "password": password}, {"address": address})
    return rpc.authenticate(issued["token"])


def wait_until(condition, timeout=10):
    """Poll (yielding to the hub) until condition() is true; fail after `timeout` seconds."""
    import eventlet
    with eventlet.Timeout(timeout, AssertionError(f"not true within {timeout} s")):
        while not condition():
            eventlet.sleep(0.02)
