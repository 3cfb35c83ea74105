"""Rate limits counted in the database: fixed windows, retry_after, and exact counts when many
threads (standing in for replicas, each with its own connection) count one subject at once, on
SQLite and on PostgreSQL."""
import pytest
from eventlet import patcher
from sqlalchemy.orm import sessionmaker

from common.db import make_engine
from common.errors import RateLimited
from common.migrate import upgrade
from services.accounts import rate_limits
from services.accounts.dependencies import Settings

WINDOW = 60


def test_a_subject_gets_limit_requests_per_window(session, clock):
    for _ in range(3):
        rate_limits.hit(session, "username", "alice", 3, WINDOW, clock())
    clock.advance(seconds=20)
    with pytest.raises(RateLimited) as err:
        rate_limits.hit(session, "username", "alice", 3, WINDOW, clock())
    assert err.value.retry_after == 40 and err.value.http_status == 429
    assert "username" in err.value.fields and "40 s" in str(err.value)
    rate_limits.hit(session, "username", "bob", 3, WINDOW, clock())  # another subject
    rate_limits.hit(session, "address", "alice", 3, WINDOW, clock())  # another kind
    clock.advance(seconds=39)
    with pytest.raises(RateLimited) as err:
        rate_limits.hit(session, "username", "alice", 3, WINDOW, clock())
    assert err.value.retry_after == 1
    clock.advance(seconds=1)  # the window is over: a new one starts with this request
    rate_limits.hit(session, "username", "alice", 3, WINDOW, clock())
    rate_limits.hit(session, "username", "alice", 3, WINDOW, clock())


def test_a_limit_of_zero_or_no_subject_counts_nothing(session, clock):
    for _ in range(5):
        rate_limits.hit(session, "username", "alice", 0, WINDOW, clock())
        rate_limits.hit(session, "address", None, 1, WINDOW, clock())


def test_token_requests_count_per_username_case_folded_and_per_address(session, clock):
    settings = Settings(rate_limit_per_username=2, rate_limit_per_address=3, rate_limit_window=WINDOW)
    rate_limits.count_token_request(session, settings, "Alice", "192.0.2.1", clock())
    rate_limits.count_token_request(session, settings, "alice ", "192.0.2.2", clock())
    with pytest.raises(RateLimited, match="username"):
        rate_limits.count_token_request(session, settings, "ALICE", "192.0.2.3", clock())
    rate_limits.count_token_request(session, settings, "bob", "192.0.2.1", clock())
    rate_limits.count_token_request(session, settings, "carol", "192.0.2.1", clock())
    with pytest.raises(RateLimited, match="address"):
        rate_limits.count_token_request(session, settings, "dave", "192.0.2.1", clock())


def count_concurrently(url, clock, threads=8, each=5, limit=20):
    """Real OS threads, one engine each (as replicas would have), all counting one subject."""
    engines = [make_engine(url) for _ in range(threads)]
    outcomes, start = [], patcher.original("threading").Barrier(threads)

    def work(engine):
        session = sessionmaker(bind=engine)()
        start.wait()
        for _ in range(each):
            try:
                rate_limits.hit(session, "username", "alice", limit, WINDOW, clock())
                outcomes.append("ok")
            except RateLimited:
                outcomes.append("limited")
        session.close()
    real_threads = [patcher.original("threading").Thread(target=work, args=(engine,))
                    for engine in engines]
    for thread in real_threads:
        thread.start()
    for thread in real_threads:
        thread.join(60)
    for engine in engines:
        engine.dispose()
    return outcomes


def test_replicas_counting_at_once_never_exceed_the_limit_sqlite(accounts_db_url, clock):
    outcomes = count_concurrently(accounts_db_url, clock)
    assert (outcomes.count("ok"), outcomes.count("limited")) == (20, 20)


def test_replicas_counting_at_once_never_exceed_the_limit_postgres(postgres, clock):
    url = postgres.create_database("accounts_rate")
    upgrade("services.accounts", url)
    outcomes = count_concurrently(url, clock)
    assert (outcomes.count("ok"), outcomes.count("limited")) == (20, 20)
