"""The admin bootstrap, as a function and as the `python -m` command operators run."""
import os
import re
import subprocess
import sys

import pytest
from sqlalchemy import select

from common.db import make_engine, session_scope
from common.errors import Unauthorized
from services.accounts import tokens
from services.accounts.bootstrap import ensure_admin
from services.accounts.models import User

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def can_log_in(engine, password, clock):
    with session_scope(engine) as session:
        try:
            tokens.issue_token(session, "admin", password, clock())
        except Unauthorized:
            return False
    return True


def admins(engine):
    with session_scope(engine) as session:
        return [(u.username, u.email, u.role, u.status)
                for u in session.scalars(select(User).where(User.username == "admin"))]


def test_ensure_admin_creates_once_then_resets_only_when_asked(engine, clock):
    created, password = ensure_admin(engine)
    assert created and len(password) >= 16
    assert admins(engine) == [("admin", "admin@localhost", "admin", "active")]
    assert can_log_in(engine, password, clock)

    assert ensure_admin(engine) == (False, None)
    assert ensure_admin(engine, "") == (False, None)  # an empty env variable counts as unset
    assert can_log_in(engine, password, clock)

    assert ensure_admin(engine, "brand-new-pass") == (False, "brand-new-pass")
    assert can_log_in(engine, "brand-new-pass", clock)
    assert not can_log_in(engine, password, clock)
    assert len(admins(engine)) == 1


def test_ensure_admin_repairs_a_disabled_or_demoted_admin(engine, session):
    ensure_admin(session, "admin-password")
    admin = session.scalars(select(User).where(User.username == "admin")).one()
    admin.role, admin.status = "user", "disabled"
    session.commit()
    assert ensure_admin(engine) == (False, None)
    assert admins(engine) == [("admin", "admin@localhost", "admin", "active")]


def test_ensure_admin_refuses_a_short_password(engine):
    with pytest.raises(ValueError):
        ensure_admin(engine, "short")
    assert admins(engine) == []


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
