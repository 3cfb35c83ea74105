"""An alarm's instance actions (resize to a flavor, stop) through the instances service's RPCs,
as the alarm's owner: the instances service checks their rights, not an administrator's. Both
RPCs are idempotent there (a resize to the flavor the instance has, a stop of a stopped one),
so a change acted on twice does no harm. Returns one line per action for the alarm's history."""
import logging

log = logging.getLogger(__name__)


def run(instances_rpc, actor, instance_id, actions, new_state):
    results = []
    for action in actions:
        if action.get("on", "ALARM") != new_state or instance_id is None:
            continue
        try:
            if action["type"] == "resize":
                request = {"flavor": action["flavor"],
                           "confirm_restart": action.get("confirm_restart", False)}
                instance = instances_rpc.resize_instance(actor, instance_id, request)
                results.append(f"resize to flavor {action['flavor']}: {instance.get('state')}")
            elif action["type"] == "stop":
                instance = instances_rpc.stop_instance(actor, instance_id)
                results.append(f"stop: {instance.get('state')}")
        except Exception as exc:  # the owner lost the right, quota, instance gone: recorded, not retried
            log.warning("alarm action %s on %s failed: %s", action, instance_id, exc)
            results.append(f"{action['type']} failed: {type(exc).__name__}: {exc}")
    return results
