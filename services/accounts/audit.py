"""The audit log: every state-changing request the gateway answered (event
gateway.request_audited), kept for administrators. Records are never changed; a redelivered
event (same id) is ignored."""
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from common import policy
from services.accounts.models import AuditRecord


def record(session, entry):
    """Store one AuditRecordSchema-loaded entry. False if a record with its id is there already."""
    if session.get(AuditRecord, entry["id"]) is not None:
        return False
    session.add(AuditRecord(**entry))
    try:
        session.commit()
    except IntegrityError:  # the same event, handled at the same moment by another worker
        session.rollback()
        return False
    return True


def list_records(session, actor, user=None, project=None, since=None, limit=100):
    """Admin: newest first, filtered by user id, project id and time (at or after `since`)."""
    policy.enforce(actor, "audit:list", what="read the audit log")
    query = select(AuditRecord).order_by(AuditRecord.at.desc(), AuditRecord.id.desc()).limit(limit)
    if user is not None:
        query = query.where(AuditRecord.user_id == user)
    if project is not None:
        query = query.where(AuditRecord.project_id == project)
    if since is not None:
        query = query.where(AuditRecord.at >= since)
    return list(session.scalars(query))
