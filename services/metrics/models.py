"""The metrics service's tables: the notifications' (the service is also labcloud's one sender of
mail: the outbox of messages to send and each user's choice of which kinds of mail they get), the
alarms', the scheduled actions' and the outbox of instance actions both of those ask for. The rrd
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
    __table_args__ = (Index("ix_alarms_client_token", "user_id", "client_token", unique=True),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    owner_actor: Mapped[str] = mapped_column(Text)          # JSON
    name: Mapped[str] = mapped_column(String(64))
    # The instance's course at creation: its managers may read and delete the alarm.
    project_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    instance_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    # The instance's owner at creation: may read (not delete) what a teacher put on their instance.
    instance_owner_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
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
    # The creator's idempotency key (EC2's ClientToken): a create repeated with it returns this alarm.
    client_token: Mapped[str | None] = mapped_column(String(64), nullable=True)


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


class Schedule(Base):
    """An instance action (resize, stop, start) at one time (`at`) or on a cron schedule (`cron`,
    read in `timezone`), run as its creator (`owner_actor`, as alarms). `next_run_at` (naive UTC)
    is the due time of the next run, None once a one-time schedule has run; a runner claims a run
    by moving it from the due time it read to the next one (schedules.py), so one replica wins."""
    __tablename__ = "schedules"
    __table_args__ = (UniqueConstraint("user_id", "client_token"),
                      Index("ix_schedules_due", "next_run_at"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    owner_actor: Mapped[str] = mapped_column(Text)          # JSON
    project_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    instance_id: Mapped[str] = mapped_column(String(36), index=True)
    instance_owner_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # as Alarm's
    name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(8))            # resize | stop | start
    flavor: Mapped[int | None] = mapped_column(Integer, nullable=True)
    confirm_restart: Mapped[bool] = mapped_column(Boolean, default=False)
    at = mapped_column(DateTime, nullable=True)                # naive UTC
    cron: Mapped[str | None] = mapped_column(String(120), nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    next_run_at = mapped_column(DateTime, nullable=True)
    last_run_at = mapped_column(DateTime, nullable=True)
    created_at = mapped_column(DateTime, default=utcnow)
    client_token: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ScheduleRun(Base):
    """One run of a schedule: (schedule_id, due_at) is unique, so a due time runs once. `outcome`
    is pending until the action outbox has performed it, then ok or error (with `error`)."""
    __tablename__ = "schedule_runs"
    __table_args__ = (UniqueConstraint("schedule_id", "due_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(Integer, index=True)
    due_at = mapped_column(DateTime)
    action: Mapped[str] = mapped_column(String(8))
    outcome: Mapped[str] = mapped_column(String(8), default="pending")  # pending | ok | error
    result: Mapped[str] = mapped_column(String(1000), default="")
    started_at = mapped_column(DateTime)
    finished_at = mapped_column(DateTime, nullable=True)


class PendingAction(Base):
    """An instance action an alarm's state change or a schedule's run asks for, stored in the same
    transaction as that change or run (action_outbox.py), then performed and marked done: a crash
    in between leaves it pending and a timer performs it. `key` (unique) names what asked for it,
    so asking twice stores it once. `origin` alarm | schedule with `origin_id` the alarm_history or
    schedule_runs row its outcome is written to. A performer holds it by a lease (claimed_until)."""
    __tablename__ = "action_outbox"
    __table_args__ = (Index("ix_action_outbox_due", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    origin: Mapped[str] = mapped_column(String(8))
    origin_id: Mapped[int] = mapped_column(Integer)
    instance_id: Mapped[str] = mapped_column(String(36))
    actor: Mapped[str] = mapped_column(Text)                  # JSON: whose rights it runs with
    action: Mapped[str] = mapped_column(Text)                 # JSON: {type, flavor?, confirm_restart?}
    state: Mapped[str] = mapped_column(String(8), default="pending")  # pending | ok | error
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at = mapped_column(DateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_until = mapped_column(DateTime, nullable=True)
    result: Mapped[str] = mapped_column(String(1000), default="")
    created_at = mapped_column(DateTime, default=utcnow)
    done_at = mapped_column(DateTime, nullable=True)
