"""Alembic, driven from code: each service keeps its migrations in `<service>/migrations` and
its own version table, so services can share one PostgreSQL database or use one each."""
import importlib
import os

from alembic import command, context
from alembic.config import Config
from sqlalchemy import text

from common.db import make_engine


def alembic_config(service_package, database_url):
    module = importlib.import_module(service_package)
    here = os.path.dirname(module.__file__)
    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(here, "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["service_name"] = service_package.rsplit(".", 1)[-1]
    return cfg


def upgrade(service_package, database_url, revision="head"):
    command.upgrade(alembic_config(service_package, database_url), revision)


def run_env(target_metadata):
    """Body of every service's migrations/env.py."""
    cfg = context.config
    service_name = cfg.attributes.get("service_name") or cfg.get_main_option("service_name")
    version_table = f"alembic_version_{service_name}"
    url = cfg.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True,
                          version_table=version_table)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(url)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Replicas of one service start together (compose --scale): one migrates, others wait.
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
                               {"name": version_table})
        context.configure(connection=connection, target_metadata=target_metadata,
                          version_table=version_table, render_as_batch=url.startswith("sqlite"))
        with context.begin_transaction():
            context.run_migrations()
        # The advisory lock above opened the transaction alembic joined: commit it ourselves.
        connection.commit()
    engine.dispose()


def autogenerate(service_package, message):
    """Developer command: write a new revision for `service_package` from its models.

    The mako template lives once, in common/, and is copied in only while alembic renders."""
    import shutil
    import tempfile
    cfg_probe = alembic_config(service_package, "sqlite://")
    script_dir = cfg_probe.get_main_option("script_location")
    template = os.path.join(script_dir, "script.py.mako")
    shutil.copy(os.path.join(os.path.dirname(__file__), "migration_template", "script.py.mako"), template)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/scratch.sqlite"
            upgrade(service_package, url)
            command.revision(alembic_config(service_package, url), message=message, autogenerate=True)
    finally:
        os.unlink(template)


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(description="apply (or, for developers, write) a service's migrations")
    parser.add_argument("service", help="e.g. services.accounts")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--autogenerate", metavar="MESSAGE", help="write a new revision instead")
    args = parser.parse_args(argv)
    if args.autogenerate:
        autogenerate(args.service, args.autogenerate)
        return
    if not args.database_url:
        parser.error("--database-url or DATABASE_URL is required")
    upgrade(args.service, args.database_url)


if __name__ == "__main__":
    main()
