"""Resize: an instance takes another flavor (vCPUs, maximum memory, root disk).

How, by where it is and what changes (`plan`):
- `cold`: a stopped instance: its definition and root disk change now; the next start has them.
- `live`: a running one whose vCPUs and disk stay and whose new maximum memory is within what the
  guest was started with: its definition changes and its memory follows through the balloon now.
- `restart`: any other running one: only when the user confirms (`confirm_restart`), as a saga
  (state `resizing`): stop the guest, grow its disk, change its definition, start it again.

The request is checked (the policy, the flavor, disks never shrink), charged (vCPU and memory growth
of a running instance to the project's quota) and fitted to its host (allocation counters and
ratios) in one transaction with the new flavor; the memory becomes the new flavor's, the CPU weight
and bandwidth stay, the cap is kept within the new vCPU count. If the host work of a cold or live
resize fails, the old flavor and values are written back (a disk already grown stays grown: larger
is harmless) and the caller gets the host's error. A restart that fails leaves the instance `error`
with the reason; a delete cleans up as from any state.
"""
import logging

from sqlalchemy import update

from common import policy
from common.errors import Conflict, HostOperationFailed, InvalidInput, LabcloudError
from services.instances import access, instance_store, lifecycle, power, quotas, scheduler, shares, states
from services.instances.models import Flavor, Instance
from services.instances.saga import describe_failure

log = logging.getLogger(__name__)
ACTION = "resize"
STOP_TIMEOUT_S = 20


def plan(old, new, state):
    if state == "stopped":
        return "cold"
    if new.vcpus == old.vcpus and new.disk_gib == old.disk_gib and new.max_memory_mib <= old.max_memory_mib:
        return "live"
    return "restart"


def new_values(instance, new):
    return {"flavor_id": new.id, "memory_mib": new.memory_mib,
            "cpu_cap": min(instance.cpu_cap, shares.max_cap(new))}


def request_resize(session, actor, instance_id, request, quota_limits, placement_policy, root_disk_growth=None):
    """Returns (instance, mode, old values): mode None when there is nothing to do (the same flavor,
    or a resize already under way). `root_disk_growth(instance_id)` (storage's answer: {growable,
    reason}) is asked when the disk would grow, so a root disk that cannot (an LVM snapshot on a
    logical pool) is refused before anything changes rather than after the guest was stopped."""
    instance = access.visible_instance(session, actor, instance_id)
    policy.enforce(actor, "instance:resize", access.target(instance), what="resize an instance")
    new = lifecycle.get_flavor(session, request["flavor"])
    old = session.get(Flavor, instance.flavor_id)
    if instance.state == "resizing" or new.id == old.id:
        return instance, None, None
    if instance.state not in ("running", "stopped"):
        raise Conflict(f"cannot resize an instance that is {instance.state}",
                       {"state": [f"is {instance.state}; resize needs running or stopped"]})
    if new.disk_gib < old.disk_gib:
        raise InvalidInput(f"flavor {new.name}'s root disk ({new.disk_gib} GiB) is smaller than the instance's "
                           f"({old.disk_gib} GiB): disks never shrink", {"flavor": ["root disk smaller than now"]})
    if new.disk_gib > old.disk_gib and root_disk_growth is not None:
        growth = root_disk_growth(instance.id)
        if not growth["growable"]:
            raise Conflict(f"flavor {new.name} has a larger root disk, and {instance.name}'s cannot grow: "
                           f"{growth['reason']}", {"flavor": ["root disk larger than this instance's can grow"]})
    mode = plan(old, new, instance.state)
    if mode == "restart" and not request.get("confirm_restart"):
        raise Conflict(f"resizing {instance.name} from {old.name} to {new.name} needs a restart of the guest: "
                       "send confirm_restart=true, or stop it first",
                       {"confirm_restart": ["needed: the guest is stopped and started again"]})
    before = {"flavor_id": old.id, **shares.current(instance)}
    values = new_values(instance, new)
    more = {}
    if states.state(instance.state).uses_compute_quota:
        more = {r: v for r, v in (("vcpus", new.vcpus - old.vcpus),
                                  ("memory_mib", new.memory_mib - instance.memory_mib)) if v > 0}
    message = f"flavor {old.name} -> {new.name} ({mode})"
    if more:
        limits = quota_limits(instance.project_id, instance.user_id)
        with quotas.charged(session, instance.project_id, instance.user_id, limits, more):
            _record(session, instance, old, new, values, mode, actor, message, placement_policy)
    else:
        _record(session, instance, old, new, values, mode, actor, message, placement_policy)
        session.commit()
    session.refresh(instance)
    return instance, mode, before


def _record(session, instance, old, new, values, mode, actor, message, placement_policy):
    memory_before = instance.memory_mib   # (the update below refreshes the loaded row)
    written = session.execute(update(Instance).where(
        Instance.id == instance.id, Instance.flavor_id == old.id, Instance.state == instance.state,
        Instance.memory_mib == memory_before).values(**values)).rowcount
    if written != 1:
        session.rollback()
        raise Conflict("the instance changed meanwhile; read it again and retry", {"flavor": ["changed meanwhile"]})
    if not scheduler.adjust_allocation(session, instance.id, vcpus=new.vcpus - old.vcpus,
                                       memory_mib=new.memory_mib - memory_before,
                                       disk_gib=new.disk_gib - old.disk_gib, policy=placement_policy):
        session.rollback()
        raise Conflict(f"flavor {new.name} does not fit host {instance.host}; an admin can migrate the "
                       "instance to a host with room", {"flavor": [f"does not fit host {instance.host}"]})
    if mode == "restart" and instance_store.move(session, instance.id, "resize", commit=False) is None:
        session.rollback()
        raise Conflict("the instance changed meanwhile; read it again and retry", {"state": ["changed meanwhile"]})
    instance_store.start_action(session, instance.id, ACTION, actor, message, commit=False)


def apply_now(session, instance, mode, before, peers):
    """A cold or live resize's host work, at once. On failure: the old flavor and values back."""
    flavor = session.get(Flavor, instance.flavor_id)
    try:
        if mode == "cold":
            peers.storage.grow_root_disk({"instance_id": instance.id, "size_gib": flavor.disk_gib})
        peers.hosts(instance.host).set_domain_shares(shares.host_request(instance, flavor))
    except Exception as exc:  # whatever failed, the record goes back to what the guest has
        _undo(session, instance, flavor, before, peers, exc)
        raise exc if isinstance(exc, LabcloudError) else HostOperationFailed(
            f"the host could not resize the guest: {describe_failure(exc)}") from None
    instance_store.finish_action(session, instance.id, ACTION, "success")
    session.refresh(instance)
    return instance


def _undo(session, instance, flavor, before, peers, exc):
    session.rollback()
    old = session.get(Flavor, before["flavor_id"])
    put_back = session.execute(update(Instance).where(
        Instance.id == instance.id, Instance.flavor_id == flavor.id).values(**before)).rowcount
    if put_back:
        scheduler.adjust_allocation(session, instance.id, vcpus=old.vcpus - flavor.vcpus,
                                    memory_mib=before["memory_mib"] - flavor.memory_mib,
                                    disk_gib=old.disk_gib - flavor.disk_gib)
    session.commit()
    session.refresh(instance)
    try:
        peers.hosts(instance.host).set_domain_shares(shares.host_request(instance, old))
    except Exception as second:  # the first failure is the one reported; this one is logged
        log.error("could not put back the size of %s on %s: %s", instance.id, instance.host, second)
    instance_store.finish_action(session, instance.id, ACTION, "error", describe_failure(exc))


def run_restart(session, instance_id, peers, now):
    """The `restart` saga (event `instance_resize_requested`): every step is idempotent, so a
    redelivered event runs it again. Returns the state it ended in, or None if nothing to do."""
    instance = session.get(Instance, instance_id)
    if instance is None or instance.state != "resizing":
        return None
    flavor = session.get(Flavor, instance.flavor_id)
    host = peers.hosts(instance.host)
    try:
        host.stop_domain({"instance_id": instance_id, "timeout": STOP_TIMEOUT_S})
        peers.storage.grow_root_disk({"instance_id": instance_id, "size_gib": flavor.disk_gib})
        host.set_domain_shares(shares.host_request(instance, flavor))
        reply = host.start_domain({"instance_id": instance_id})
    except Exception as exc:  # the guest may be stopped or half-changed: say so; a delete cleans up
        message = f"resize failed: {describe_failure(exc)}"
        instance_store.finish_action(session, instance_id, ACTION, "error", message)
        return instance_store.move(session, instance_id, "saga:power_failed", reason=message)
    instance_store.record_host_report(session, instance_id, reply["state"], reply["seq"])
    return power.settle(session, instance_id, ACTION, reply, now)
