"""Migration 0002 on a database holding users of 0001: each gets a personal project whose id is
the user's id (the instances migration sets project_id := user_id), `disabled` becomes
`suspended`, nothing is lost; on SQLite and on PostgreSQL."""
import tempfile

import sqlalchemy as sa

from common.migrate import upgrade
from services.accounts import projects
from services.accounts.dependencies import DEFAULT_PROJECT_QUOTA

from tests.accounts.conftest import ADMIN

USERS_OF_0001 = [(3, "ada", "active"), (7, "bob", "disabled"), (8, "cy", "pending")]


def fill_0001(url):
    upgrade("services.accounts", url, "0001")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for user_id, name, status in USERS_OF_0001:
            conn.execute(sa.text(
                "INSERT INTO users (id, username, email, password_hash, role, status, created_at) "
                "VALUES (:id, :name, :email, 'h', 'user', :status, '2030-01-01 00:00:00')"),
                {"id": user_id, "name": name, "email": f"{name}@example.org", "status": status})
        conn.execute(sa.text("INSERT INTO tokens (token_hash, user_id, expires_at) "
                             "VALUES ('t', 3, '2030-01-02 00:00:00')"))
        conn.execute(sa.text("INSERT INTO ssh_keys (user_id, name, fingerprint, public_key) "
                             "VALUES (7, 'k', 'f', 'p')"))
    return engine


def check_upgraded(engine, url):
    upgrade("services.accounts", url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT p.id, p.name, m.user_id, m.role, p.quota_instances, p.quota_vcpus "
            "FROM projects p JOIN project_members m ON m.project_id = p.id ORDER BY p.id")).all()
        assert [tuple(r) for r in rows] == [(uid, name, uid, "manager", None, None)
                                            for uid, name, _ in USERS_OF_0001]
        assert conn.execute(sa.text("SELECT id, status FROM users ORDER BY id")).all() == [
            (3, "active"), (7, "suspended"), (8, "pending")]
        assert conn.execute(sa.text("SELECT count(*) FROM tokens")).scalar() == 1
        assert conn.execute(sa.text("SELECT user_id, project_id FROM ssh_keys")).all() == [(7, None)]
    with sa.orm.Session(engine) as session:
        # A project made after the migration gets a fresh id (PostgreSQL: the sequence moved on).
        made, _ = projects.create_project(session, ADMIN, {"name": "cs101"}, DEFAULT_PROJECT_QUOTA,
                                          None)
        assert made.id > max(uid for uid, _, _ in USERS_OF_0001)


def test_upgrade_on_sqlite():
    url = f"sqlite:///{tempfile.mkdtemp(prefix='labcloud-db-')}/accounts.sqlite"
    engine = fill_0001(url)
    try:
        check_upgraded(engine, url)
    finally:
        engine.dispose()


def test_upgrade_on_postgres(postgres):
    url = postgres.create_database("accounts_0002")
    engine = fill_0001(url)
    try:
        check_upgraded(engine, url)
    finally:
        engine.dispose()
