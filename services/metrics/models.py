"""The notifications' tables (the metrics service is also labcloud's one sender of mail): the
outbox of messages to send and each user's choice of which kinds of mail they get. The rrd
samples are files, not tables (rrd_store.py)."""
from sqlalchemy import BigInteger, Boolean, DateTime, Float, Index, Integer, String, Text, UniqueConstraint
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


class Alarm(Base):
    """A CloudWatch-like alarm on one instance's or one host's metric (alarms.py evaluates it).

    `owner_actor` is the creator's actor as it was when the alarm was made: instance actions run
    with it, so an alarm can do to an instance only what its creator could. `evaluated_at` is the
    end of the last evaluation; a replica evaluates only after winning a compare-and-set on it."""
    __tablename__ = "alarms"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    owner_actor: Mapped[str] = mapped_column(Text)          # JSON
    name: Mapped[str] = mapped_column(String(64))
    # The instance's course at creation: its managers may read and delete the alarm.
    project_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    instance_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    host: Mapped[str | None] = mapped_column(String(63), nullable=True)
    metric: Mapped[str] = mapped_column(String(32))
    statistic: Mapped[str] = mapped_column(String(8))         # average | min | max
    comparison: Mapped[str] = mapped_column(String(32))
    threshold: Mapped[float] = mapped_column(Float)
    period: Mapped[int] = mapped_column(Integer)              # seconds
    evaluation_periods: Mapped[int] = mapped_column(Integer)  # M
    datapoints_to_alarm: Mapped[int] = mapped_column(Integer)  # N
    missing_data: Mapped[str] = mapped_column(String(16))
    emails: Mapped[str] = mapped_column(Text)                 # JSON list
    actions: Mapped[str] = mapped_column(Text)                # JSON list
    state: Mapped[str] = mapped_column(String(17), default="INSUFFICIENT_DATA")
    state_reason: Mapped[str] = mapped_column(String(1000), default="")
    state_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    state_changed_at = mapped_column(DateTime, default=utcnow)
    evaluated_at = mapped_column(DateTime, nullable=True)
    created_at = mapped_column(DateTime, default=utcnow)


class AlarmHistory(Base):
    """One state change of an alarm. (alarm_id, changed_at) is unique: the compare-and-set that
    changes the state and this insert are one transaction, so a change is recorded once."""
    __tablename__ = "alarm_history"
    __table_args__ = (UniqueConstraint("alarm_id", "changed_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alarm_id: Mapped[int] = mapped_column(Integer, index=True)
    old_state: Mapped[str] = mapped_column(String(17))
    new_state: Mapped[str] = mapped_column(String(17))
    reason: Mapped[str] = mapped_column(String(1000))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    changed_at = mapped_column(DateTime)
    actions_result: Mapped[str] = mapped_column(Text, default="")
