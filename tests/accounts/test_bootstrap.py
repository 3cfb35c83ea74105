"""The admin bootstrap, as a function and as the `python -m` command operators run."""
import os
import re
import subprocess
import sys

import pytest
from sqlalchemy import select

from common.db import make_engine, session_scope
from common.errors import Unauthorized
from services.accounts import passwords, tokens
from services.accounts.bootstrap import ensure_admin
from services.accounts.memberships import memberships_of
from services.accounts.models import Project, User

from tests.accounts.conftest import CHEAP_HASH

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


CHEAP = passwords.Hasher(**CHEAP_HASH)


def can_log_in(engine, password, clock):
    # (A login re-hashes at the hasher's cost: after the first one, checks are cheap.)
    with session_scope(engine) as session:
        try:
            tokens.issue_token(session, CHEAP, "admin", password, clock(), 3600)
        except Unauthorized:
            return False
    return True


def admins(engine):
    with session_scope(engine) as session:
        return [(u.username, u.email, u.role, u.status)
                for u in session.scalars(select(User).where(User.username == "admin"))]


def admin_projects(engine):
    """[(project name, role)] of the admin."""
    with session_scope(engine) as session:
        admin = session.scalars(select(User).where(User.username == "admin")).one()
        return [(session.get(Project, entry["id"]).name, entry["role"])
                for entry in memberships_of(session, admin.id)]


def test_ensure_admin_creates_once_then_resets_only_when_asked(engine, clock):
    created, password = ensure_admin(engine, hasher=CHEAP)
    assert created and len(password) >= 16
    assert admins(engine) == [("admin", "admin@localhost", "admin", "active")]
    assert admin_projects(engine) == [("admin", "manager")]
    assert can_log_in(engine, password, clock)

    assert ensure_admin(engine) == (False, None)
    assert ensure_admin(engine, "") == (False, None)  # an empty env variable counts as unset
    assert can_log_in(engine, password, clock)

    assert ensure_admin(engine, "brand-new-pass", CHEAP) == (False, "brand-new-pass")
    assert can_log_in(engine, "brand-new-pass", clock)
    assert not can_log_in(engine, password, clock)
    assert len(admins(engine)) == 1
    assert admin_projects(engine) == [("admin", "manager")]


def test_ensure_admin_repairs_a_disabled_or_demoted_admin(engine, session):
    ensure_admin(session, "admin-password", CHEAP)
    admin = session.scalars(select(User).where(User.username == "admin")).one()
    admin.role, admin.status = "user", "suspended"
    session.execute(Project.__table__.delete())  # and its project lost
    session.commit()
    assert ensure_admin(engine) == (False, None)
    assert admins(engine) == [("admin", "admin@localhost", "admin", "active")]
    assert admin_projects(engine) == [("admin", "manager")]


def test_ensure_admin_refuses_a_weak_password_but_not_for_naming_admin(engine):
    for weak in ("short", "password123", "aaaaaaaaaaaa"):
        with pytest.raises(ValueError, match="admin password"):
            ensure_admin(engine, weak)
    assert admins(engine) == []
    assert ensure_admin(engine, "admin-password", CHEAP)[0]


def run_bootstrap(database_url, password=None):
    env = {k: v for k, v in os.environ.items() if k not in ("LABCLOUD_ADMIN_PASSWORD", "DATABASE_URL")}
    env["DATABASE_URL"] = database_url
    if password is not None:
        env["LABCLOUD_ADMIN_PASSWORD"] = password
    result = subprocess.run([sys.executable, "-m", "services.accounts.bootstrap"], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_command_prints_a_generated_password_exactly_once(tmp_path, clock):
    url = f"sqlite:///{tmp_path}/fresh.sqlite"  # not migrated: the command migrates it
    first = run_bootstrap(url)
    found = re.findall(r"^admin password: (\S+)$", first, re.MULTILINE)
    assert len(found) == 1
    password = found[0]
    engine = make_engine(url)
    try:
        assert can_log_in(engine, password, clock)
        second = run_bootstrap(url)
        assert "exists" in second and "admin password" not in second and password not in second
        assert can_log_in(engine, password, clock)

        third = run_bootstrap(url, password="from-the-env-1")
        assert "reset" in third and "from-the-env-1" not in third
        assert can_log_in(engine, "from-the-env-1", clock)
        assert not can_log_in(engine, password, clock)
    finally:
        engine.dispose()


def test_command_uses_the_env_password_for_a_new_admin(accounts_db_url, engine, clock):
    out = run_bootstrap(accounts_db_url, password="chosen-by-operator")
    assert "created" in out and "admin password" not in out
    assert can_log_in(engine, "chosen-by-operator", clock)
