"""Stop, start and reboot, and what the hypervisor reports on its own (a guest that powers itself
off). Requests are recorded with a transitional state and carried out by an event handler, like the
sagas, so HTTP answers at once and an ACPI shutdown may take its time."""
from common.errors import Conflict
from services.instances.lifecycle import visible_instance
from services.instances.models import Instance
from services.instances.saga import describe_failure, transition

# action -> (states it may start from, transitional state, final state, host agent method)
ACTIONS = {
    "stop": (("running",), "stopping", "stopped", "stop_domain"),
    "start": (("stopped",), "starting", "running", "start_domain"),
    "reboot": (("running",), "rebooting", "running", "reboot_domain"),
}


def request_power(session, actor, instance_id, action):
    instance = visible_instance(session, actor, instance_id)
    allowed, transitional, _, _ = ACTIONS[action]
    if instance.state == transitional:
        return instance  # asked twice: already under way
    if not transition(session, instance.id, allowed, transitional):
        raise Conflict(f"cannot {action} an instance that is {instance.state}",
                       {"state": [f"must be {' or '.join(allowed)}"]})
    session.refresh(instance)
    return instance


def run_power(session, instance_id, action, hosts, now):
    _, transitional, final, method = ACTIONS[action]
    instance = session.get(Instance, instance_id)
    if instance is None or instance.state != transitional:
        return None
    try:
        getattr(hosts(instance.host), method)({"instance_id": instance_id})
    except Exception as exc:  # the domain is in an unknown state: say so, keep the record
        transition(session, instance_id, [transitional], "error",
                   reason=f"{action} failed: {describe_failure(exc)}"[:2000])
        return "error"
    values = {"started_at": now(), "ssh_ready_at": None} if final == "running" else {}
    if transition(session, instance_id, [transitional], final, **values):
        return final
    return None


def observe_domain_state(session, instance_id, domain_state, now):
    """The host saw the domain change on its own: keep the instance's state true to it."""
    if domain_state == "shutoff":
        if transition(session, instance_id, ["running", "rebooting"], "stopped", ssh_ready_at=None):
            return "stopped"
    elif domain_state == "running":
        if transition(session, instance_id, ["stopped"], "running", started_at=now(), ssh_ready_at=None):
            return "running"
    return None
