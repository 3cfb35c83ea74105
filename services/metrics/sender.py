"""The sender: every due outbox row claimed, addressed, sent through the Mailer and marked.

Called by the service's timer and right after an event queued a mail. Several calls at once (a
timer tick and a kick, two replicas) each send different rows: a row is sent only by the caller
whose claim won (outbox.claim)."""
import dataclasses
import logging

from services.metrics import outbox

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SendPolicy:
    retry_base_seconds: float = 5.0    # first retry after this, then doubled each time ...
    retry_max_seconds: float = 900.0   # ... up to this
    max_attempts: int = 100            # then the row is `failed` (about a day at the cap)
    claim_seconds: float = 120.0       # a claim outlives one SMTP session (SMTP_TIMEOUT) easily
    batch: int = 50                    # rows looked at per call

    @classmethod
    def from_config(cls, config):
        return cls(retry_base_seconds=float(config.get("MAIL_RETRY_BASE_SECONDS", cls.retry_base_seconds)),
                   retry_max_seconds=float(config.get("MAIL_RETRY_MAX_SECONDS", cls.retry_max_seconds)),
                   max_attempts=int(config.get("MAIL_MAX_ATTEMPTS", cls.max_attempts)),
                   claim_seconds=float(config.get("MAIL_CLAIM_SECONDS", cls.claim_seconds)),
                   batch=int(config.get("MAIL_BATCH", cls.batch)))


class NoAddress(Exception):
    """The recipient cannot be mailed at all (deleted, inactive, no address): the row is dropped."""


def send_due(session, mailer, address_of, policy, sender, clock):
    """Sends what is due now. `address_of(user_id)` returns the user's address or raises NoAddress
    (any other exception: try again later). Returns {state: rows} of what this call did."""
    done = {}
    for row_id in outbox.due(session, clock(), policy.batch):
        row = outbox.claim(session, row_id, sender, clock(), policy.claim_seconds)
        if row is None:
            continue  # another sender has it
        state = _send_one(session, mailer, address_of, policy, sender, clock, row)
        done[state] = done.get(state, 0) + 1
    return done


def _send_one(session, mailer, address_of, policy, sender, clock, row):
    try:
        recipient = row.recipient
        if recipient is None:
            recipient = address_of(row.user_id)
            outbox.set_recipient(session, row.id, sender, recipient)
        mailer.send(row.message_id, recipient, row.subject, row.body)
    except NoAddress as exc:
        log.info("dropping mail %s: %s", row.message_id, exc)
        outbox.mark_dropped(session, row, sender, exc)
        return "dropped"
    except Exception as exc:  # SMTP down or refusing, TLS, login, accounts not answering: later
        return _failed(session, row, sender, clock, policy, f"{type(exc).__name__}: {exc}")
    outbox.mark_sent(session, row, sender, clock())
    return "sent"


def _failed(session, row, sender, clock, policy, error):
    state = outbox.mark_failed(session, row, sender, clock(), error, policy)
    level = logging.ERROR if state == "failed" else logging.WARNING
    log.log(level, "mail %s not sent (attempt %d): %s%s", row.message_id, row.attempts + 1, error,
            "; giving up" if state == "failed" else "")
    return state if state == "failed" else "retry"
