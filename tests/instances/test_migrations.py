"""Migration 0004 on SQLite and PostgreSQL: instances made before projects existed land in their
owner's personal project (id = user id); the quota lock table exists; downgrade undoes it."""
import uuid

import pytest
import sqlalchemy as sa
from alembic import command

from common.migrate import alembic_config, upgrade


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/instances.sqlite"
    return request.getfixturevalue("postgres").create_database(f"instances_{uuid.uuid4().hex[:8]}")


def test_existing_instances_go_to_their_owners_personal_project(database_url):
    upgrade("services.instances", database_url, "0003")
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        for user_id, name, state in ((7, "web", "running"), (8, "db", "deleted")):
            conn.execute(sa.text(
                "INSERT INTO instances (id, name, user_id, flavor_id, image_id, state) "
                "VALUES (:id, :name, :user_id, 1, 1, :state)"),
                {"id": str(uuid.uuid4()), "name": name, "user_id": user_id, "state": state})
    upgrade("services.instances", database_url)
    with engine.connect() as conn:
        assert sorted(conn.execute(sa.text("SELECT user_id, project_id FROM instances")).all()) == [(7, 7), (8, 8)]
        columns = {c["name"]: c for c in sa.inspect(conn).get_columns("instances")}
        assert columns["project_id"]["nullable"] is False
        assert "ix_instances_project_id" in {i["name"] for i in sa.inspect(conn).get_indexes("instances")}
        assert {c["name"] for c in sa.inspect(conn).get_columns("quota_locks")} == {"project_id", "counter"}
        conn.execute(sa.text("INSERT INTO quota_locks (project_id) VALUES (:p)"), {"p": 2 ** 62})  # 64-bit ids
        assert conn.execute(sa.text("SELECT counter FROM quota_locks")).scalar() == 0
        conn.commit()
    command.downgrade(alembic_config("services.instances", database_url), "0003")
    with engine.connect() as conn:
        assert "project_id" not in {c["name"] for c in sa.inspect(conn).get_columns("instances")}
        assert "quota_locks" not in sa.inspect(conn).get_table_names()
    engine.dispose()
