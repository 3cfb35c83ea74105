"""Dropping rows nobody can use any more, so the tables do not grow forever: expired tokens
(revoked ones included), rate limit windows that are over, password links used or expired.
Run by every replica on a timer; each delete is idempotent."""
import datetime as dt

from sqlalchemy import delete, or_

from services.accounts.models import PasswordLink, RateLimit, Token


def prune(session, settings, now):
    """Returns {table: rows deleted}."""
    window_start = now - dt.timedelta(seconds=settings.rate_limit_window)
    deleted = {
        "tokens": session.execute(delete(Token).where(Token.expires_at <= now)).rowcount,
        "rate_limits": session.execute(
            delete(RateLimit).where(RateLimit.window_started_at <= window_start)).rowcount,
        "password_links": session.execute(delete(PasswordLink).where(
            or_(PasswordLink.expires_at <= now, PasswordLink.used_at.is_not(None)))).rowcount,
    }
    session.commit()
    return deleted
