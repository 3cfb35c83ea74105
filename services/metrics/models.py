"""The notifications' tables (the metrics service is also labcloud's one sender of mail): the
outbox of messages to send and each user's choice of which kinds of mail they get. The rrd
samples are files, not tables (rrd_store.py)."""
from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.clock import utcnow


class Base(DeclarativeBase):
    """The metrics service's own metadata: no other service maps these tables."""


class OutboxMessage(Base):
    """One mail for one recipient about one event. `message_id` (unique) is made from the event
    kind, the event's own identity and the recipient, so a redelivered event inserts nothing, and
    it is the mail's Message-ID header, so a receiver can drop the one duplicate a crash between
    "sent" and "marked sent" could make.

    state: pending (due at next_attempt_at) | sent | failed (given up after MAIL_MAX_ATTEMPTS) |
    dropped (no one to send it to: the user is gone, inactive or has no address). A sender holds a
    row while it sends by a compare-and-set on claimed_until (a lease), so two replicas never send
    the same row at once, and a sender that died mid-send frees it when the lease ends."""
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16))       # account | security | instance
    event: Mapped[str] = mapped_column(String(64))      # e.g. user_approved
    user_id: Mapped[int] = mapped_column(BigInteger)
    # From the event when it carries one; else looked up (accounts.get_user) when first sent.
    recipient: Mapped[str | None] = mapped_column(String(320), nullable=True)
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at = mapped_column(DateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_until = mapped_column(DateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_at = mapped_column(DateTime, default=utcnow)
    sent_at = mapped_column(DateTime, nullable=True)


class NotificationPreference(Base):
    """A user's choice for one kind of mail; no row means the kind is on."""
    __tablename__ = "notification_preferences"
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    updated_at = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
