"""Which events become mail, for whom, and whether the user wants it: events in, outbox rows out.

Each event maps to one kind of notification. `account` and `instance` mail can be turned off by
its user; `security` mail (one-time password links) cannot. A notice is keyed by the event's own
identity (a user's approval time, a password link's digest, an instance's update time), so the
same event delivered twice makes the same Message-ID and the outbox's unique key stores it once.
"""
import dataclasses
import datetime as dt
import hashlib

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from common.errors import InvalidInput
from services.metrics import mail_templates
from services.metrics.models import NotificationPreference, OutboxMessage


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str
    description: str
    can_disable: bool


KINDS = {kind.name: kind for kind in (
    Kind("account", "your sign-up approved or rejected", True),
    Kind("security", "one-time links to set your password (new account, reset); cannot be turned off", False),
    Kind("instance", "your instance is ready (SSH answers) or went into error", True),
    Kind("alarm", "one of your alarms changed state (OK, ALARM, INSUFFICIENT_DATA)", True),
)}

EVENT_KINDS = {
    "user_approved": "account",
    "user_rejected": "account",
    "user_created": "security",
    "user_imported": "security",
    "user_password_reset": "security",
    "instance_ready": "instance",
    "instance_failed": "instance",
    "alarm_state": "alarm",
}

# What enqueue() did with a notice.
QUEUED, DUPLICATE, DISABLED = "queued", "duplicate", "disabled"


@dataclasses.dataclass(frozen=True)
class Notice:
    """One mail an event asks for. `event_key` identifies the event (not the delivery);
    `recipient` is None when the event does not carry the address (looked up when sent)."""
    event: str
    event_key: str
    user_id: int
    recipient: str | None
    values: dict

    @property
    def kind(self):
        return EVENT_KINDS[self.event]


def stamp(value):
    """A datetime as digits only: it goes into a Message-ID, where ':' and '+' are not allowed."""
    return value.strftime("%Y%m%dT%H%M%S%f") if isinstance(value, dt.datetime) else "none"


def digest(text):
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def message_id(notice, domain):
    """The mail's Message-ID (without the angle brackets) and the outbox row's unique key."""
    return f"{notice.event}.{notice.event_key}.user{notice.user_id}@{domain}"


# ----- events to notices ---------------------------------------------------------------------

def _user_values(user):
    return {"name": user.get("full_name") or user["username"], "username": user["username"]}


def user_approved(user):
    # approved_at: a user rejected, then approved again, is a second approval and a second mail.
    return Notice("user_approved", f"{user['id']}.{stamp(user.get('approved_at'))}", user["id"],
                  user["email"], _user_values(user))


def user_rejected(event):
    user = event["user"]  # only a pending user is rejected, and only once
    return Notice("user_rejected", str(user["id"]), user["id"], user["email"],
                  dict(_user_values(user), reason=event.get("reason")))


def user_link(event_name, event):
    """user_created, user_imported, user_password_reset: a mail only when there is a link (an
    admin who gave a password sends none). Every link is new, so its digest keys the event."""
    link = event.get("password_link")
    if not link:
        return None
    user = event["user"]
    return Notice(event_name, digest(link), user["id"], user["email"],
                  dict(_user_values(user), password_link=link))


def instance_event(event_name, instance):
    # updated_at changes with every write of the instance: each readiness or failure is its own.
    return Notice(event_name, f"{instance['id']}.{stamp(instance.get('updated_at'))}",
                  instance["user_id"], None,
                  {"instance": instance.get("name"), "instance_id": instance["id"],
                   "reason": instance.get("reason")})


def alarm_state(alarm, change):
    """One notice per recipient of an alarm's state change (`alarm`: alarms.as_dict, `change`:
    its AlarmHistory row): the owner (address looked up when sent) and each listed address. The
    change's id keys the event, so an evaluation that records it queues its mail once."""
    values = {"alarm": alarm["name"], "alarm_id": alarm["id"],
              "target": (f"instance {alarm['instance_id']}" if alarm["instance_id"]
                         else f"host {alarm['host']}"),
              "metric": alarm["metric"], "statistic": alarm["statistic"],
              "comparison": alarm["comparison"], "threshold": f"{alarm['threshold']:g}",
              "value": "missing" if change.value is None else f"{change.value:g}",
              "old_state": change.old_state, "new_state": change.new_state, "reason": change.reason}
    key = f"{alarm['id']}.{change.id}"
    notices = [Notice("alarm_state", key, alarm["user_id"], None, values)]
    notices += [Notice("alarm_state", f"{key}.{digest(address.lower())}", alarm["user_id"], address, values)
                for address in alarm["emails"]]
    return notices


# ----- the outbox ----------------------------------------------------------------------------

def stage(session, notice, domain, now):
    """Adds the mail of `notice` to the session's transaction unless its user turned its kind off
    (QUEUED or DISABLED); the caller commits it with the change the mail is about."""
    kind = KINDS[notice.kind]
    if kind.can_disable and not is_enabled(session, notice.user_id, kind.name):
        return DISABLED
    subject, body = mail_templates.render(notice.event, kind.name, notice.values, kind.can_disable)
    session.add(OutboxMessage(
        message_id=message_id(notice, domain), kind=kind.name, event=notice.event,
        user_id=notice.user_id, recipient=notice.recipient, subject=subject, body=body,
        state="pending", attempts=0, next_attempt_at=now, created_at=now))
    return QUEUED


def enqueue(session, notice, domain, now):
    """Stores the mail of `notice` unless its user turned its kind off. QUEUED, DUPLICATE (this
    event's mail is stored already: a redelivery) or DISABLED. Commits."""
    if stage(session, notice, domain, now) == DISABLED:
        session.commit()
        return DISABLED
    try:
        session.commit()
    except IntegrityError:  # the unique message_id: this event was handled before
        session.rollback()
        return DUPLICATE
    return QUEUED


# ----- preferences ---------------------------------------------------------------------------

def is_enabled(session, user_id, kind):
    row = session.get(NotificationPreference, (user_id, kind))
    return True if row is None else row.enabled


def preferences(session, user_id):
    """Every kind with the user's choice (on unless turned off)."""
    chosen = {row.kind: row.enabled for row in session.scalars(
        select(NotificationPreference).where(NotificationPreference.user_id == user_id))}
    session.commit()  # no read transaction left open across the worker's later yields
    return [{"kind": kind.name, "enabled": chosen.get(kind.name, True) if kind.can_disable else True,
             "can_disable": kind.can_disable, "description": kind.description}
            for kind in KINDS.values()]


def set_preferences(session, user_id, choices, now):
    """choices: {kind: bool}. Turning `security` off is refused (400 naming it); setting a kind to
    what it is already changes nothing, so a repeated request is harmless."""
    refused = {name: ["security notifications cannot be turned off"]
               for name, enabled in choices.items() if not enabled and not KINDS[name].can_disable}
    if refused:
        raise InvalidInput("these notifications cannot be turned off", refused)
    for name, enabled in choices.items():
        if not KINDS[name].can_disable:
            continue  # always on: nothing to store
        _upsert(session, user_id, name, enabled, now)
    return preferences(session, user_id)


def _upsert(session, user_id, kind, enabled, now):
    for _attempt in range(2):  # a concurrent first choice of the same kind inserts first: update it
        row = session.get(NotificationPreference, (user_id, kind))
        if row is None:
            session.add(NotificationPreference(user_id=user_id, kind=kind, enabled=enabled, updated_at=now))
        else:
            row.enabled, row.updated_at = enabled, now
        try:
            session.commit()
            return
        except IntegrityError:
            session.rollback()
    raise RuntimeError(f"could not store the preference {kind} of user {user_id}")
