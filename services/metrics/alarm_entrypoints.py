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
        (samples reach the files a little after their time)."""
        grace = dt.timedelta(seconds=float(self.config.get("ALARM_GRACE_SECONDS", 10)))
        ref = self.clock() - grace
        for alarm in alarms.due(self.db, ref):
            self._evaluate(alarm, ref)

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
        for alarm in due:
            # None: another worker's batch of this period (a backlog) took it since the query.
            taken = self.alarm_index.take(alarm.id, ref)
            if taken is not None and not self._evaluate(alarm, ref):
                taken.give_back()

    def _evaluate(self, alarm, ref):
        """False when another evaluator had claimed the alarm first (the batch path's index then
        asks the database again at the next batch); True when this one judged it or failed to."""
        try:
            if not alarms.claim(self.db, alarm, ref):
                return False  # another evaluator judged this period
            rule = alarms.rule_of(alarm)
            end = alarms.unix(ref)
            start = end - rule.period * (rule.evaluation_periods + 1)
            samples = self.store.alarm_samples(alarm.instance_id, alarm.host, alarm.metric, start, end)
            points = alarm_rules.datapoints(samples, rule, end)
            verdict = alarm_rules.evaluate(points, rule, alarm.state)
            staged = []
            change = alarms.record(self.db, alarm, verdict, ref,
                                   lambda row: staged.extend(self._stage_effects(alarm, row, self.clock())))
        except Exception:
            log.exception("evaluating alarm %s failed; the next period tries again", alarm.id)
            return True
        if change is not None:
            counters.alarm_changes.labels(change.new_state).inc()
            for event, outcome in staged:
                counters.mail_events.labels(event, outcome).inc()
            self._act_now()
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
