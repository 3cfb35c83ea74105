"""Performs the due rows of the action outbox (action_outbox.py) through instance_actions.py.

Called right after an alarm change or a schedule run staged actions, and by the service's timer,
which retries what failed for want of the instances service. A refusal by the instances service
(a LabcloudError: the creator lost the right, over quota, the instance is gone) is final and
recorded; anything else (the service unreachable, a timeout) is tried again with a doubling
backoff, and given up after `max_attempts`."""
import dataclasses
import json
import logging

from common.errors import LabcloudError
from services.metrics import action_outbox, instance_actions
from services.metrics.outbox import backoff_seconds

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ActionPolicy:
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 300.0
    max_attempts: int = 20
    claim_seconds: float = 120.0   # longer than an RPC's wait for the instances service
    batch: int = 50

    @classmethod
    def from_config(cls, config):
        return cls(retry_base_seconds=float(config.get("ACTION_RETRY_BASE_SECONDS", cls.retry_base_seconds)),
                   retry_max_seconds=float(config.get("ACTION_RETRY_MAX_SECONDS", cls.retry_max_seconds)),
                   max_attempts=int(config.get("ACTION_MAX_ATTEMPTS", cls.max_attempts)),
                   claim_seconds=float(config.get("ACTION_CLAIM_SECONDS", cls.claim_seconds)))


def perform_due(session, instances_rpc, policy, performer, clock):
    """Performs what is due now; returns {ok|error|retry: rows} of what this call did."""
    done = {}
    for row_id in action_outbox.due(session, clock(), policy.batch):
        row = action_outbox.claim(session, row_id, performer, clock(), policy.claim_seconds)
        if row is None:
            continue  # another performer has it
        outcome = _perform_one(session, instances_rpc, policy, performer, clock, row)
        done[outcome] = done.get(outcome, 0) + 1
    return done


def _perform_one(session, instances_rpc, policy, performer, clock, row):
    action = json.loads(row.action)
    try:
        text = instance_actions.perform(instances_rpc, json.loads(row.actor), row.instance_id, action)
    except LabcloudError as exc:
        log.warning("%s of %s refused: %s", action["type"], row.instance_id, exc)
        action_outbox.finish(session, row, performer, clock(), False,
                             f"{action['type']} failed: {type(exc).__name__}: {exc}")
        return "error"
    except Exception as exc:
        error = f"{action['type']} failed: {type(exc).__name__}: {exc}"
        if row.attempts + 1 >= policy.max_attempts:
            log.error("%s; giving up after %d attempts", error, row.attempts + 1)
            action_outbox.finish(session, row, performer, clock(), False, error)
            return "error"
        log.warning("%s; trying again later", error)
        delay = backoff_seconds(row.attempts + 1, policy.retry_base_seconds, policy.retry_max_seconds)
        action_outbox.retry_later(session, row, performer, clock(), error, delay)
        return "retry"
    action_outbox.finish(session, row, performer, clock(), True, text)
    return "ok"
