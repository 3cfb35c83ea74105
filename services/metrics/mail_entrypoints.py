"""The metrics service's mail entry points (a mixin of MetricsService: one service, its entry
points in two files): other services' events become outbox rows, a sender sends them, and users
set which kinds they get. Logic is in notifications.py (events to rows, preferences), outbox.py,
sender.py and mailer.py. Uses the service's db, clock, config, mailer, mail_policy, sender_name and
accounts dependencies."""
import datetime as dt
import logging

from nameko.events import event_handler
from nameko.rpc import rpc

from common.actors import load_actor
from common.errors import InvalidInput, NotFound
from common.policy import enforce
from common.schemas import dump, load
from common.timers import config_timer
from services.metrics import counters, notifications, outbox, sender
from services.metrics.schemas import (
    InstanceNoticeEvent, NotificationKindSchema, NotificationPreferencesRequest, UserApprovedEvent,
    UserImportedEvent, UserLinkEvent, UserReasonEvent)

log = logging.getLogger(__name__)


class MailEntrypoints:
    # ----- mail: events in -------------------------------------------------------------------
    # requeue_on_error: a handler that could not store its row (database unavailable) gets the
    # event again instead of losing the mail. Bad payloads are logged and dropped, not requeued.

    @event_handler("accounts", "user_approved", requeue_on_error=True)
    def mail_user_approved(self, payload):
        self._queue(UserApprovedEvent, payload, notifications.user_approved)

    @event_handler("accounts", "user_rejected", requeue_on_error=True)
    def mail_user_rejected(self, payload):
        self._queue(UserReasonEvent, payload, notifications.user_rejected)

    @event_handler("accounts", "user_created", requeue_on_error=True)
    def mail_user_created(self, payload):
        self._queue(UserLinkEvent, payload, lambda event: notifications.user_link("user_created", event))

    @event_handler("accounts", "user_imported", requeue_on_error=True)
    def mail_user_imported(self, payload):
        self._queue(UserImportedEvent, payload, lambda event: notifications.user_link("user_imported", event))

    @event_handler("accounts", "user_password_reset", requeue_on_error=True)
    def mail_user_password_reset(self, payload):
        self._queue(UserLinkEvent, payload,
                    lambda event: notifications.user_link("user_password_reset", event))

    @event_handler("instances", "instance_ready", requeue_on_error=True)
    def mail_instance_ready(self, payload):
        self._queue(InstanceNoticeEvent, payload,
                    lambda event: notifications.instance_event("instance_ready", event))

    @event_handler("instances", "instance_failed", requeue_on_error=True)
    def mail_instance_failed(self, payload):
        self._queue(InstanceNoticeEvent, payload,
                    lambda event: notifications.instance_event("instance_failed", event))

    # ----- mail: out ---------------------------------------------------------------------------

    @config_timer("MAIL_SEND_INTERVAL", 5)
    def send_due_mail(self):
        self._send_due()

    @config_timer("MAIL_PRUNE_INTERVAL", 3600)
    def prune_sent_mail(self):
        keep = dt.timedelta(days=float(self.config.get("MAIL_KEEP_DAYS", 30)))
        pruned = outbox.prune(self.db, self.clock() - keep)
        if pruned:
            log.info("forgot %d sent or dropped mails older than %s", pruned, keep)

    # ----- notification preferences --------------------------------------------------------

    @rpc
    def get_notification_preferences(self, actor):
        actor = load_actor(actor)
        enforce(actor, "notification:get", {"user_id": actor["id"]})
        return dump(NotificationKindSchema, notifications.preferences(self.db, actor["id"]), many=True)

    @rpc
    def set_notification_preferences(self, actor, request):
        actor = load_actor(actor)
        request = load(NotificationPreferencesRequest, request)
        enforce(actor, "notification:set", {"user_id": actor["id"]})
        kinds = notifications.set_preferences(self.db, actor["id"], request, self.clock())
        return dump(NotificationKindSchema, kinds, many=True)

    # ----- helpers -----------------------------------------------------------------------------

    def _queue(self, schema, payload, to_notice):
        try:
            event = load(schema, payload)
        except InvalidInput as exc:
            log.warning("no mail for a malformed %s event: %s %s", schema.__name__, exc, exc.fields)
            return
        notice = to_notice(event)
        if notice is None:
            return
        outcome = notifications.enqueue(self.db, notice, self.mailer.settings.domain, self.clock())
        counters.mail_events.labels(notice.event, outcome).inc()
        if outcome == notifications.QUEUED:
            # Sent now rather than at the next tick; a failure here is the sender's to retry.
            try:
                self._send_due()
            except Exception:
                log.exception("sending right after queueing failed; the timer tries again")

    def _send_due(self):
        done = sender.send_due(self.db, self.mailer, self._address_of, self.mail_policy,
                               self.sender_name, self.clock)
        for state, number in done.items():
            counters.mail_sends.labels(state).inc(number)

    def _address_of(self, user_id):
        """The user's address, asked of accounts as the user themself (`user:get` lets a user read
        their own record and nothing else), so this service needs no administrator's rights."""
        itself = {"id": user_id, "username": "notifications", "role": "user", "projects": []}
        try:
            user = self.accounts.get_user(itself, user_id)
        except NotFound:
            raise sender.NoAddress(f"user {user_id} does not exist") from None
        if user.get("status") != "active" or not user.get("email"):
            raise sender.NoAddress(f"user {user_id} is {user.get('status')}")
        return user["email"]
