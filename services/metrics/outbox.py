"""The outbox's rows through their life: due, claimed by one sender, then sent, retried later,
given up (failed) or dropped. Every change is one compare-and-set UPDATE, committed at once, so
no transaction is open while a sender talks to the SMTP server.

Delivery is at least once: a sender that crashes after the SMTP server took a mail and before
mark_sent committed leaves the row pending; once its claim ends the mail is sent again, with the
same Message-ID, so a receiver can drop the duplicate. That window is the only one."""
import datetime as dt

from sqlalchemy import delete, func, select, update

from services.metrics import leases
from services.metrics.models import OutboxMessage

ERROR_MAX = 1000


def backoff_seconds(attempts, base, cap):
    """Seconds before the next try after `attempts` failed ones: base, 2 base, 4 base, ... <= cap."""
    return min(float(cap), float(base) * 2 ** max(0, attempts - 1))


def due(session, now, limit):
    """Ids of pending rows whose time has come and that no live claim holds, oldest first."""
    return leases.due(session, OutboxMessage, now, limit)


def claim(session, row_id, sender, now, lease_seconds):
    """The row for `sender` until now + lease, if it is still due and unclaimed; else None (another
    sender or replica took it first)."""
    return leases.claim(session, OutboxMessage, row_id, sender, now, lease_seconds)


def _release(session, row_id, sender, **values):
    """Changes a row this sender holds and lets it go. False when the claim was lost (it expired
    and another sender took the row): then that sender decides."""
    released = leases.release(session, OutboxMessage, row_id, sender, **values)
    session.commit()
    return released


def set_recipient(session, row_id, sender, address):
    session.execute(update(OutboxMessage)
                    .where(OutboxMessage.id == row_id, OutboxMessage.claimed_by == sender)
                    .values(recipient=address))
    session.commit()


# A sent security mail's body held a one-time password link: accounts keeps only its digest, and
# so, once it is delivered, does this table (nothing sends a sent row again).
REDACTED_BODY = "(sent; the body held a one-time password link and is not kept)"


def mark_sent(session, row, sender, now):
    redacted = {"body": REDACTED_BODY} if row.kind == "security" else {}
    return _release(session, row.id, sender, state="sent", sent_at=now,
                    attempts=row.attempts + 1, last_error=None, **redacted)


def mark_failed(session, row, sender, now, error, policy):
    """Try again after the backoff, or give up (`failed`) once MAIL_MAX_ATTEMPTS are spent.
    Returns the row's new state."""
    attempts = row.attempts + 1
    error = str(error)[:ERROR_MAX]
    if attempts >= policy.max_attempts:
        _release(session, row.id, sender, state="failed", attempts=attempts, last_error=error)
        return "failed"
    delay = backoff_seconds(attempts, policy.retry_base_seconds, policy.retry_max_seconds)
    _release(session, row.id, sender, attempts=attempts, last_error=error,
             next_attempt_at=now + dt.timedelta(seconds=delay))
    return "pending"


def mark_dropped(session, row, sender, reason):
    return _release(session, row.id, sender, state="dropped", last_error=str(reason)[:ERROR_MAX])


def prune(session, before):
    """Forget sent and dropped rows created before `before` (failed ones stay for an admin to see).
    Their Message-IDs go with them: an event redelivered after that long would mail again."""
    result = session.execute(delete(OutboxMessage).where(
        OutboxMessage.state.in_(("sent", "dropped")), OutboxMessage.created_at < before))
    session.commit()
    return result.rowcount


def counts(session):
    """{state: rows}, for the service's health and the tests."""
    rows = session.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all()
    session.commit()
    return {state: number for state, number in rows}
