"""Rate limits: requests counted per (kind, subject) in fixed windows, in the accounts database so
every replica counts against the same numbers.

Each request is one conditional UPDATE (or, for a subject never seen, one INSERT), so two
replicas counting the same subject at once can never both take the last request of a window:
the database applies the condition `count < limit` to the row as it is when it writes it.
Token requests are counted BEFORE the password is hashed: a flood of guesses costs the server a
few row updates each, not an argon2 computation.
"""
import datetime as dt
import math

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from common.errors import RateLimited
from services.accounts.models import RateLimit

SUBJECT_MAX = 254


def hit(session, kind, subject, limit, window_seconds, now):
    """Count one request of `subject` and commit; RateLimited (retry_after: the seconds left in
    the window) if it already had `limit` in this window. A limit <= 0 is no limit; a request
    without a subject (no client address known) is not counted."""
    if limit <= 0 or not subject:
        return
    subject = str(subject)[:SUBJECT_MAX]
    window_start = now - dt.timedelta(seconds=window_seconds)
    for _ in range(2):  # a second round only if a concurrent first request inserted the row
        if _count_in_window(session, kind, subject, limit, window_start) or \
                _start_new_window(session, kind, subject, window_start, now):
            session.commit()
            return
        started = session.scalar(select(RateLimit.window_started_at).where(
            RateLimit.kind == kind, RateLimit.subject == subject))
        if started is not None:
            session.commit()
            left = (started - window_start).total_seconds()
            raise RateLimited(f"too many token requests for this {kind}: at most {limit} in "
                              f"{window_seconds} s; try again in {math.ceil(left)} s",
                              {kind: [f"at most {limit} token requests in {window_seconds} s"]},
                              retry_after=math.ceil(left))
        if _first_request(session, kind, subject, now):
            return
    raise AssertionError("unreachable: the rate limit row is neither there nor insertable")


def _count_in_window(session, kind, subject, limit, window_start):
    return session.execute(
        update(RateLimit).where(RateLimit.kind == kind, RateLimit.subject == subject,
                                RateLimit.window_started_at > window_start,
                                RateLimit.count < limit)
        .values(count=RateLimit.count + 1)).rowcount == 1


def _start_new_window(session, kind, subject, window_start, now):
    return session.execute(
        update(RateLimit).where(RateLimit.kind == kind, RateLimit.subject == subject,
                                RateLimit.window_started_at <= window_start)
        .values(count=1, window_started_at=now)).rowcount == 1


def _first_request(session, kind, subject, now):
    """Insert the subject's row with this request counted; False if a concurrent request did."""
    try:
        session.execute(insert(RateLimit).values(kind=kind, subject=subject,
                                                 window_started_at=now, count=1))
        session.commit()
        return True
    except IntegrityError:
        session.rollback()
        return False


def count_token_request(session, settings, username, address, now):
    """The token request limits: per username (case-folded), then per client address."""
    hit(session, "username", username.strip().lower(), settings.rate_limit_per_username,
        settings.rate_limit_window, now)
    hit(session, "address", address, settings.rate_limit_per_address, settings.rate_limit_window, now)
