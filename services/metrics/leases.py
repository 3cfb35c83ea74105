"""Rows worked by one holder at a time, for the mail outbox (outbox.py) and the action outbox
(action_outbox.py): a `pending` row is due once `next_attempt_at` has come and no live claim
holds it; a holder claims it for a lease with one compare-and-set UPDATE, and every later change
is another, on its own claim. A holder that dies leaves the row to the next once the lease ends.
The model needs `id`, `state`, `next_attempt_at`, `claimed_by` and `claimed_until` columns."""
import datetime as dt

from sqlalchemy import or_, select, update


def _claimable(model, now):
    return (model.state == "pending", model.next_attempt_at <= now,
            or_(model.claimed_until.is_(None), model.claimed_until < now))


def due(session, model, now, limit):
    """Ids of pending rows whose time has come and that no live claim holds, oldest first."""
    ids = list(session.scalars(select(model.id).where(*_claimable(model, now))
                               .order_by(model.next_attempt_at, model.id).limit(limit)))
    session.commit()
    return ids


def claim(session, model, row_id, holder, now, lease_seconds):
    """The row for `holder` until now + lease, if it is still due and unclaimed; else None
    (another holder or replica took it first)."""
    result = session.execute(
        update(model).where(model.id == row_id, *_claimable(model, now))
        .values(claimed_by=holder, claimed_until=now + dt.timedelta(seconds=lease_seconds)))
    session.commit()
    if result.rowcount != 1:
        return None
    # populate_existing: the worker's session may hold this row from before the UPDATE.
    row = session.get(model, row_id, populate_existing=True)
    session.commit()
    return row


def release(session, model, row_id, holder, **values):
    """Changes a row this holder claimed and lets it go, in the caller's transaction (it commits).
    False when the claim was lost (it expired and another holder took the row): that one decides."""
    result = session.execute(
        update(model).where(model.id == row_id, model.claimed_by == holder, model.state == "pending")
        .values(claimed_by=None, claimed_until=None, **values))
    return result.rowcount == 1
