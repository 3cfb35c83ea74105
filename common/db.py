"""Database access for a service: an engine per service container, a session per worker.

Rule that keeps SQLite safe under eventlet: never hold a write transaction across a yield (an
RPC call, a sleep). Commit first, then talk to other services. SQLite's busy wait is a blocking C
call that would stall the hub while another greenthread holds the lock.
"""
from contextlib import contextmanager

from nameko.extensions import DependencyProvider
from sqlalchemy import create_engine, event
from sqlalchemy.orm import sessionmaker


def make_engine(url):
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
        return engine
    return create_engine(url, pool_pre_ping=True)


class Database(DependencyProvider):
    """Injects a SQLAlchemy session; the session is closed when the worker ends."""

    def __init__(self, url_key="DATABASE_URL"):
        self.url_key = url_key
        self.engine = None
        self.Session = None

    def setup(self):
        url = self.container.config[self.url_key]
        self.engine = make_engine(url)
        self.Session = sessionmaker(bind=self.engine, expire_on_commit=False)

    def stop(self):
        if self.engine is not None:
            self.engine.dispose()

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        session = self.Session()
        self._sessions = getattr(self, "_sessions", {})
        self._sessions[worker_ctx] = session
        return session

    def worker_teardown(self, worker_ctx):
        session = self._sessions.pop(worker_ctx, None)
        if session is not None:
            session.rollback()
            session.close()


@contextmanager
def session_scope(engine):
    """A session for code outside a worker (bootstrap commands, tests)."""
    session = sessionmaker(bind=engine, expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()
