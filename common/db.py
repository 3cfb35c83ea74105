"""Database access for a service: an engine per service container, a session per worker.

Rule that keeps SQLite safe under eventlet: never hold a write transaction across a yield (an
RPC call, a sleep). Commit first, then talk to other services. SQLite's busy wait is a blocking C
call that would stall the hub while another greenthread holds the lock. The wait is therefore
bounded (DATABASE_BUSY_TIMEOUT, 5 s) and a worker that still finds the database locked is run
again after a green pause (`retry_transient_workers`), in which such a holder can finish.
"""
import functools
import inspect
import logging
import random
from contextlib import contextmanager

import eventlet
from nameko.extensions import DependencyProvider
from sqlalchemy import create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

log = logging.getLogger(__name__)
# PostgreSQL's codes for a transaction the server gave up so another could go on: run it again.
_PG_RETRY_CODES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
BUSY_ATTEMPTS = 6
DEFAULT_BUSY_TIMEOUT = 5  # seconds SQLite waits for another writer's lock, blocking the process


def make_engine(url, busy_timeout=DEFAULT_BUSY_TIMEOUT):
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": busy_timeout})

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
        config = self.container.config
        self.engine = make_engine(config[self.url_key],
                                  float(config.get("DATABASE_BUSY_TIMEOUT", DEFAULT_BUSY_TIMEOUT)))
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


def is_transient(exc):
    """Whether a worker that failed with `exc` would succeed if run again from the start.

    SQLite in WAL mode answers "database is locked" at once, without its busy wait, when a
    transaction that began by reading tries to write after another connection committed (its
    snapshot is stale: SQLITE_BUSY_SNAPSHOT); only a new transaction can go on."""
    if not isinstance(exc, OperationalError):
        return False
    orig = exc.orig
    if getattr(orig, "pgcode", None) in _PG_RETRY_CODES:
        return True
    message = str(orig)
    return "database is locked" in message or "database table is locked" in message


def retry_transient_workers(service_cls):
    """Class decorator: every entrypoint of the service that fails on a transient database error
    (`is_transient`) is rolled back and run again from the start, a few times, with a short
    randomised pause. Entrypoints are idempotent (delivered at least once), so running one again
    is what a redelivery would do, without losing the event when it was not requeued or failing
    an RPC caller for a lock another process held for a moment."""
    sessions = [name for name, value in inspect.getmembers(service_cls) if isinstance(value, Database)]
    for name, method in inspect.getmembers(service_cls, inspect.isfunction):
        if getattr(method, "nameko_entrypoints", None):
            setattr(service_cls, name, _retrying(method, sessions))
    return service_cls


def _retrying(method, sessions):
    @functools.wraps(method)  # keeps nameko_entrypoints (wraps copies __dict__)
    def run(self, *args, **kwargs):
        for attempt in range(1, BUSY_ATTEMPTS + 1):
            try:
                return method(self, *args, **kwargs)
            except OperationalError as exc:
                if attempt == BUSY_ATTEMPTS or not is_transient(exc):
                    raise
                for name in sessions:
                    getattr(self, name).rollback()
                log.info("%s: %s; running it again (attempt %d)", method.__name__, exc.orig, attempt + 1)
                eventlet.sleep(random.uniform(0.01, 0.05) * 2 ** attempt)
    return run
