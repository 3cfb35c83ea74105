"""Every service's migrations on PostgreSQL, applied by three replicas at once (as
`docker compose up --scale X=3` starts them): one migrates, the others wait on the advisory lock."""
import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from common.migrate import alembic_config

from labcloud.stack import DATABASE_SERVICES


@pytest.mark.parametrize("service", DATABASE_SERVICES)
def test_concurrent_replicas_migrate_once(postgres, service):
    url = postgres.create_database(f"{service}_mig")
    replicas = [subprocess.Popen([sys.executable, "-m", "common.migrate", f"services.{service}",
                                  "--database-url", url], stderr=subprocess.PIPE, text=True)
                for _ in range(3)]
    errors = [(p.wait(120), p.stderr.read()) for p in replicas]
    assert all(code == 0 for code, _ in errors), errors
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        versions = conn.execute(sa.text(f"SELECT version_num FROM alembic_version_{service}")).all()
        tables = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    head = ScriptDirectory.from_config(alembic_config(f"services.{service}", url)).get_current_head()
    assert versions == [(head,)]
    assert len(tables) >= 2
