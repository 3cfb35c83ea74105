"""The metrics service's scheduled-action entry points (a mixin of MetricsService, like
alarm_entrypoints.py): CRUD and history RPCs, the timer that runs due schedules, the performer of
the action outbox (alarms' and schedules' instance actions); a deleted instance's schedules go in
service.py's instance_deleted handler. Logic: schedules.py, cron.py, action_outbox.py,
action_runner.py. Uses the service's db, clock, config, sender_name and instances dependencies."""
import datetime as dt
import logging

from nameko.rpc import rpc

from common.actors import load_actor
from common.errors import InvalidInput
from common.schemas import dump, load
from common.timers import config_timer
from services.metrics import action_outbox, action_runner, schedules
from services.metrics.schemas import (
    ScheduleCreateRequest, ScheduleListQuery, ScheduleQuery, ScheduleRunSchema, ScheduleSchema)

log = logging.getLogger(__name__)


def _schedule_id(schedule_id):
    return load(ScheduleQuery, {"schedule_id": schedule_id})["schedule_id"]


class ScheduleEntrypoints:

    @rpc
    def create_schedule(self, actor, request):
        """Idempotent with a `client_token` (the first create's schedule comes back)."""
        actor = load_actor(actor)
        request = load(ScheduleCreateRequest, request)
        # As the actor: NotFound unless they may see the instance (owner, manager, admin).
        instance = self.instances.get_instance(actor, request["instance"])
        if request["flavor"] is not None and request["flavor"] not in {f["id"] for f in self.instances.list_flavors()}:
            raise InvalidInput("no such flavor", {"flavor": [f"no flavor {request['flavor']}"]})
        return dump(ScheduleSchema, schedules.create(self.db, actor, request, instance, self.clock()))

    @rpc
    def list_schedules(self, actor, instance_id=None):
        query = load(ScheduleListQuery, {"instance_id": instance_id})
        return dump(ScheduleSchema, schedules.listing(self.db, load_actor(actor), **query), many=True)

    @rpc
    def get_schedule(self, actor, schedule_id):
        return dump(ScheduleSchema, schedules.get(self.db, load_actor(actor), _schedule_id(schedule_id)))

    @rpc
    def delete_schedule(self, actor, schedule_id):
        return {"deleted": schedules.delete_one(self.db, load_actor(actor), _schedule_id(schedule_id))}

    @rpc
    def get_schedule_history(self, actor, schedule_id):
        rows = schedules.history(self.db, load_actor(actor), _schedule_id(schedule_id))
        return dump(ScheduleRunSchema, rows, many=True)

    # ----- running -------------------------------------------------------------------------

    @config_timer("SCHEDULE_INTERVAL", 15)
    def run_due_schedules(self):
        """Claims each due schedule's run (one replica wins each), then performs what is pending
        in the action outbox: these runs, and earlier actions that failed for want of the
        instances service or whose performer died."""
        now = self.clock()
        for schedule_id, due_at in schedules.due(self.db, now):
            try:
                if schedules.claim_run(self.db, schedule_id, due_at, now) is not None:
                    log.info("schedule %s: running its %s run", schedule_id, due_at)
            except Exception:
                log.exception("claiming the run of schedule %s failed; the next tick tries again", schedule_id)
        self._perform_due_actions()

    @config_timer("ACTION_PRUNE_INTERVAL", 3600)
    def prune_done_actions(self):
        keep = dt.timedelta(days=float(self.config.get("ACTION_KEEP_DAYS", 30)))
        pruned = action_outbox.prune(self.db, self.clock() - keep)
        if pruned:
            log.info("forgot %d finished instance actions older than %s", pruned, keep)

    def _perform_due_actions(self):
        policy = action_runner.ActionPolicy.from_config(self.config)
        action_runner.perform_due(self.db, self.instances, policy, self.sender_name, self.clock)
