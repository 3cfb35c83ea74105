"""One instance action (resize to a flavor, stop, start) through the instances service's RPCs,
as the actor who asked for it (an alarm's or a schedule's creator, as stored at its creation):
the instances service checks their rights, not an administrator's. Each RPC is idempotent there
(a resize to the flavor the instance has, a stop of a stopped instance, a start of a running
one), so an action performed twice, as the action outbox may after a crash, does no harm.

An action is {type: resize|stop|start, flavor (resize), confirm_restart (resize)}."""

TYPES = ("resize", "stop", "start")


def perform(instances_rpc, actor, instance_id, action):
    """A line for the history saying what was done. A refusal of the instances service (the
    creator lost the right, quota, the instance is gone: a LabcloudError) and any failure to reach
    it propagate; the action outbox tells the two apart."""
    kind = action["type"]
    if kind == "resize":
        request = {"flavor": action["flavor"], "confirm_restart": bool(action.get("confirm_restart"))}
        instance = instances_rpc.resize_instance(actor, instance_id, request)
        return f"resize to flavor {action['flavor']}: {instance.get('state')}"
    if kind == "stop":
        return f"stop: {instances_rpc.stop_instance(actor, instance_id).get('state')}"
    if kind == "start":
        return f"start: {instances_rpc.start_instance(actor, instance_id).get('state')}"
    raise ValueError(f"unknown instance action {kind!r}")
