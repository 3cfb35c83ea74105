"""Stop, start and reboot (requested in lifecycle.py, carried out here by an event handler so HTTP
answers at once and an ACPI shutdown may take its time), and what hosts report on their own: a
guest that powers itself off, SSH answering after a boot.

Host reports carry the agent's sequence number: only a report newer than the newest one recorded
counts, so reports handled out of order (concurrent workers, replicas) never move a guest back."""
from services.instances import instance_store, states
from services.instances.models import Instance
from services.instances.saga import describe_failure

HOST_METHODS = {"stop": "stop_domain", "start": "start_domain", "reboot": "reboot_domain"}
EXPECTED = {"stop": "stopped", "start": "running", "reboot": "running", "resize": "running"}
# Host events correct only settled states; `error` is left to reconcile, which knows whether the
# domain still exists.
EVENT_CORRECTS = ("running", "stopped", "host_down")


def run_power(session, instance_id, action, hosts, now):
    """Returns the state the instance ended in, or None when there was nothing to do."""
    instance = session.get(Instance, instance_id)
    if instance is None or instance.state != states.UNDER_WAY[action]:
        return None
    try:
        reply = getattr(hosts(instance.host), HOST_METHODS[action])({"instance_id": instance_id})
    except Exception as exc:  # the domain is in an unknown state: say so; reconcile will look
        message = f"{action} failed: {describe_failure(exc)}"
        instance_store.finish_action(session, instance_id, action, "error", message)
        return instance_store.move(session, instance_id, "saga:power_failed", reason=message)
    instance_store.record_host_report(session, instance_id, reply["state"], reply["seq"])
    return settle(session, instance_id, action, reply, now)


def settle(session, instance_id, action, reply, now):
    """End the power saga (or a resize's restart) where the host's newest report puts the guest."""
    session.expire_all()
    instance = session.get(Instance, instance_id)
    observed = states.observed_action(instance.host_state)
    step = {"host:running": "saga:powered_on", "host:shutoff": "saga:powered_off"}.get(observed)
    if step is None:  # paused or the like: trust the reply of our own call
        step = "saga:powered_on" if states.observed_action(reply["state"]) == "host:running" else "saga:powered_off"
    values = {"ssh_ready_at": None}
    if step == "saga:powered_on":
        values.update(started_at=now(), started_seq=instance.host_seq, ssh_port=reply.get("ssh_port"),
                      reason=None)
    moved = instance_store.move(session, instance_id, step, **values)
    if moved is not None:
        ok = moved == EXPECTED[action]
        instance_store.finish_action(session, instance_id, action, "success" if ok else "error",
                                     None if ok else f"the guest is {moved}")
    return moved


def observe_domain_state(session, instance_id, domain_state, seq, host=None):
    """A host reported a domain's new state on its own (libvirt lifecycle event). Only the
    instance's own host counts: a migration's source reports the guest leaving it, its destination
    the guest arriving, before the move is recorded."""
    instance = session.get(Instance, instance_id, populate_existing=True)
    if host is not None and instance is not None and instance.host != host:
        return None
    if not instance_store.record_host_report(session, instance_id, domain_state, seq):
        return None  # older than what we know
    return instance_store.follow_host(session, instance_id, EVENT_CORRECTS)


def observe_ssh_ready(session, instance_id, host, seq, at):
    """The host agent saw the guest's SSH answer. Counts only for the boot it was probed after."""
    instance = session.get(Instance, instance_id)
    if (instance is None or instance.state != "running" or instance.host != host
            or instance.ssh_ready_at is not None
            or (instance.started_seq is not None and seq <= instance.started_seq)):
        return False
    return instance_store.update_fields(session, instance_id, ["running"], ssh_ready_at=at)
