"""The metrics service's alarm entry points (a mixin of MetricsService, like mail_entrypoints.py):
CRUD and history RPCs, the evaluation timer, and the evaluation of a sample batch's alarms (called
by the domain_stats handler). Logic: alarms.py (database), alarm_rules.py (judging),
notifications.alarm_state (mail), action_outbox.py and action_runner.py (resize, stop). Uses the
service's db, clock, config, store, mailer, instances and alarm_index dependencies, and the action
runner of schedule_entrypoints.py."""
import datetime as dt
import logging

from nameko.rpc import rpc

from common.actors import load_actor
from common.schemas import dump, load
from common.timers import config_timer
from services.metrics import alarm_rules, alarms, counters, notifications
from services.metrics.schemas import (
    AlarmCreateRequest, AlarmHistorySchema, AlarmListQuery, AlarmQuery, AlarmSchema)

log = logging.getLogger(__name__)
# The evaluation timer judges its due alarms this many at a time (a transaction and a native-
# thread call each), so a site with thousands of alarms does not hold one long transaction.
TIMER_CHUNK = 100


def _alarm_id(alarm_id):
    return load(AlarmQuery, {"alarm_id": alarm_id})["alarm_id"]


class AlarmEntrypoints:

    @rpc
    def create_alarm(self, actor, request):
        """Idempotent with a `client_token`: a create repeated with the creator's token returns
        the alarm the first one made. Without one a retried create makes a second alarm."""
        actor = load_actor(actor)
        request = load(AlarmCreateRequest, request)
        # As the actor: NotFound unless they may see the instance (owner, manager, admin).
        instance = (self.instances.get_instance(actor, request["instance"])
                    if request["instance"] else None)
        created = alarms.create(self.db, actor, request, instance, self.clock())
        self.alarm_index.invalidate()
        return dump(AlarmSchema, created)

    @rpc
    def list_alarms(self, actor, instance_id=None, host=None):
        query = load(AlarmListQuery, {"instance_id": instance_id, "host": host})
        return dump(AlarmSchema, alarms.listing(self.db, load_actor(actor), **query), many=True)

    @rpc
    def get_alarm(self, actor, alarm_id):
        return dump(AlarmSchema, alarms.get(self.db, load_actor(actor), _alarm_id(alarm_id)))

    @rpc
    def delete_alarm(self, actor, alarm_id):
        deleted = alarms.delete(self.db, load_actor(actor), _alarm_id(alarm_id))
        self.alarm_index.invalidate()
        return {"deleted": deleted}

    @rpc
    def get_alarm_history(self, actor, alarm_id):
        return dump(AlarmHistorySchema, alarms.history(self.db, load_actor(actor), _alarm_id(alarm_id)), many=True)

    # ----- evaluation ------------------------------------------------------------------------

    @config_timer("ALARM_EVALUATE_INTERVAL", 5)
    def evaluate_alarms(self):
        """Every alarm whose period ended, judged on what arrived up to ALARM_GRACE_SECONDS ago
        (samples reach the files a little after their time), TIMER_CHUNK at a time."""
        grace = dt.timedelta(seconds=float(self.config.get("ALARM_GRACE_SECONDS", 10)))
        ref = self.clock() - grace
        due = alarms.due(self.db, ref)
        for first in range(0, len(due), TIMER_CHUNK):
            self._evaluate_all(due[first:first + TIMER_CHUNK], ref)

    def _evaluate_batch(self, at, instance_ids, host):
        """After a sample batch is stored: its instances' (and host's) alarms whose period ended
        by the batch's time, so a breach is seen one sample after it happened. The database is
        asked only about those the index (alarm_index.py) thinks due: most batches, none."""
        ref = alarms.from_unix(at)
        try:
            instance_ids, host = self.alarm_index.candidates(self.db, ref, instance_ids, host)
            if not instance_ids and host is None:
                return
            due = alarms.due(self.db, ref, instance_ids=instance_ids, host=host)
        except Exception:  # the samples are stored; the timer judges these alarms later
            log.exception("looking up the alarms of a sample batch failed")
            return
        # Those the database says were judged this period already are, for the index too.
        self.alarm_index.judged_except(instance_ids, host, ref, {alarm.id for alarm in due})
        # None: another worker's batch of this period (a backlog) took it since the query.
        taken = [(alarm, t) for alarm in due if (t := self.alarm_index.take(alarm.id, ref)) is not None]
        lost = self._evaluate_all([alarm for alarm, _taken in taken], ref)
        for alarm, t in taken:
            if alarm.id in lost:  # the index asks the database again at the next batch
                t.give_back()

    def _evaluate_all(self, due, ref):
        """Judges the alarms `due` at `ref`: one transaction claims them, one native-thread call
        reads their samples, one transaction records the verdicts that change nothing, and each
        state change is its own transaction with its mail and actions (alarms.record). Returns
        the ids another evaluator had claimed first; one that fails here is logged and left to
        the next period."""
        if not due:
            return set()
        try:
            won = alarms.claim_all(self.db, due, ref)
        except Exception:
            log.exception("claiming %d alarms failed; the next period tries again", len(due))
            return set()
        end = alarms.unix(ref)
        rules = [alarms.rule_of(alarm) for alarm in won]
        reads = [(alarm.instance_id, alarm.host, alarm.metric, end - rule.period * (rule.evaluation_periods + 1), end)
                 for alarm, rule in zip(won, rules)]
        unchanged, changed = [], []
        for alarm, rule, samples in zip(won, rules, self.store.alarm_samples_many(reads)):
            try:
                if isinstance(samples, Exception):
                    raise samples
                verdict = alarm_rules.evaluate(alarm_rules.datapoints(samples, rule, end), rule, alarm.state)
            except Exception:  # this alarm only: the others of the batch are judged
                log.exception("judging alarm %s failed; the next period tries again", alarm.id)
                continue
            (changed if verdict.state != alarm.state else unchanged).append((alarm, verdict))
        try:
            alarms.record_unchanged(self.db, unchanged, ref)
        except Exception:
            log.exception("recording %d verdicts failed; the next period tries again", len(unchanged))
        if sum(self._record_change(alarm, verdict, ref) for alarm, verdict in changed):
            self._act_now()
        return {alarm.id for alarm in due} - {alarm.id for alarm in won}

    def _record_change(self, alarm, verdict, ref):
        """A verdict that changes the alarm's state, with its mail and actions: whether it did."""
        staged = []
        try:
            change = alarms.record(self.db, alarm, verdict, ref,
                                   lambda row: staged.extend(self._stage_effects(alarm, row, self.clock())))
        except Exception:
            log.exception("recording the change of alarm %s failed; the next period tries again", alarm.id)
            return False
        if change is None:
            return False
        counters.alarm_changes.labels(change.new_state).inc()
        for event, outcome in staged:
            counters.mail_events.labels(event, outcome).inc()
        return True

    def _stage_effects(self, alarm, change, now):
        """The mail and the instance actions of a state change, added to its transaction
        (alarms.record commits them with the change); returns the mail's (event, outcome)s."""
        outcomes = []
        for notice in notifications.alarm_state(alarms.as_dict(alarm), change):
            outcomes.append((notice.event, notifications.stage(self.db, notice, self.mailer.settings.domain, now)))
        alarms.stage_actions(self.db, alarm, change, now)
        return outcomes

    def _act_now(self):
        """What a change staged, sent and performed now rather than at the timers' next ticks."""
        for send in (self._send_due, self._perform_due_actions):
            try:
                send()
            except Exception:
                log.exception("acting right after a change failed; the timer tries again")
