"""A worker that finds its SQLite database locked by another writer longer than the busy wait
(DATABASE_BUSY_TIMEOUT) is run again from the start rather than failed (an RPC caller's error,
or an event that was not requeued and is lost): common.db.retry_transient_workers, on every
service. The lock here is held the way the rule in common/db.py forbids and a bug could: by
another greenthread of the same process, whose release waits for the hub that SQLite's blocking
wait holds; only the retry's green pause lets it go."""
import sqlite3

import eventlet
import pytest
from nameko.events import event_handler
from nameko.rpc import rpc
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_hook, entrypoint_waiter
from sqlalchemy import Column, Integer, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import declarative_base

from common.db import Database, is_transient, make_engine, retry_transient_workers

Base = declarative_base()
BUSY_TIMEOUT = 0.2


class Counter(Base):
    __tablename__ = "counter"
    id = Column(Integer, primary_key=True)
    value = Column(Integer, nullable=False)


class GreenLockHolder:
    """Before the worker's write, the first time it runs: another connection takes the write
    lock and a green timer releases it `hold` seconds later."""

    def __init__(self, path, hold):
        self.path, self.hold, self.runs = path, hold, 0

    def __call__(self):
        self.runs += 1
        if self.runs == 1:
            holder = sqlite3.connect(self.path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            eventlet.spawn_after(self.hold, lambda: (holder.execute("COMMIT"), holder.close()))


BEFORE_WRITE = {}


def add_one(session):
    row = session.get(Counter, 1)
    BEFORE_WRITE["hook"]()
    row.value += 1
    session.commit()
    return row.value


class BareService:
    name = "db_retry_bare"
    db = Database()

    @rpc
    def add(self):
        return add_one(self.db)


@retry_transient_workers
class RetryingService:
    name = "db_retry"
    db = Database()

    @rpc
    def add(self):
        return add_one(self.db)

    @event_handler("db_retry_source", "bump")
    def on_bump(self, payload):
        add_one(self.db)


@pytest.fixture
def database(tmp_path, rabbit_config):
    path = str(tmp_path / "retry.sqlite")
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO counter (id, value) VALUES (1, 0)"))

    def value():
        with engine.connect() as connection:
            return connection.execute(text("SELECT value FROM counter WHERE id = 1")).scalar()
    config = dict(rabbit_config, DATABASE_URL=url, DATABASE_BUSY_TIMEOUT=BUSY_TIMEOUT)
    yield path, config, value
    engine.dispose()


def test_without_the_retry_the_worker_fails_on_the_lock(container_factory, database):
    """The control: the held lock does fail a worker that is not retried."""
    path, config, value = database
    BEFORE_WRITE["hook"] = GreenLockHolder(path, hold=0.5)
    container = container_factory(BareService, config)
    container.start()
    with entrypoint_hook(container, "add") as add:
        with pytest.raises(OperationalError, match="database is locked"):
            add()
    eventlet.sleep(0.6)
    assert value() == 0


def test_an_rpc_worker_is_run_again_and_adds_once(container_factory, database):
    path, config, value = database
    BEFORE_WRITE["hook"] = holder = GreenLockHolder(path, hold=0.5)
    container = container_factory(RetryingService, config)
    container.start()
    with entrypoint_hook(container, "add") as add:
        assert add() == 1
    assert holder.runs >= 2  # refused at least once, then committed once
    assert value() == 1


def test_an_event_is_handled_once_the_lock_is_gone(container_factory, database, rabbit_config):
    path, config, value = database
    BEFORE_WRITE["hook"] = holder = GreenLockHolder(path, hold=0.5)
    container = container_factory(RetryingService, config)
    container.start()
    with entrypoint_waiter(container, "on_bump", timeout=10):
        event_dispatcher(rabbit_config)("db_retry_source", "bump", {})
    assert holder.runs >= 2
    assert value() == 1


def test_other_database_errors_are_not_retried(container_factory, database):
    path, config, value = database
    calls = []

    def broken():
        calls.append(1)
        raise OperationalError("SELECT 1", {}, sqlite3.OperationalError("no such table: elsewhere"))
    BEFORE_WRITE["hook"] = broken
    container = container_factory(RetryingService, config)
    container.start()
    with entrypoint_hook(container, "add") as add:
        with pytest.raises(OperationalError, match="no such table"):
            add()
    assert len(calls) == 1
    assert value() == 0


class PgError(Exception):
    def __init__(self, pgcode):
        super().__init__(pgcode)
        self.pgcode = pgcode


@pytest.mark.parametrize("orig, transient", [
    (sqlite3.OperationalError("database is locked"), True),
    (sqlite3.OperationalError("database table is locked"), True),
    (PgError("40001"), True), (PgError("40P01"), True),
    (PgError("57P01"), False), (sqlite3.OperationalError("disk I/O error"), False)])
def test_which_errors_are_transient(orig, transient):
    assert is_transient(OperationalError("UPDATE x", {}, orig)) is transient
