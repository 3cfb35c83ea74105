"""A change of an instance's resource shares (shares.py), asked by its owner or an admin: checked,
charged, recorded, then made on the host at once (the guest feels it without a reboot).

Order and failure: the new values are written first (compare-and-set on the old ones, so two
concurrent changes cannot both win, and a growth of memory is charged to the quota in the same
transaction), then the host is told the absolute values (a repeat changes nothing). If the host
fails, the old values are written back and sent to the host again, and the caller gets the host's
error: the record and the guest never disagree after an answer. A stopped instance's definition
changes; its next start uses it."""
import logging

from sqlalchemy import update

from common import policy
from common.errors import Conflict, HostOperationFailed, LabcloudError
from services.instances import access, instance_store, quotas, scheduler, shares, states
from services.instances.models import Flavor, Instance

log = logging.getLogger(__name__)
ACTION = "set_resources"


def set_shares(session, actor, instance_id, changes, quota_limits, hosts, placement_policy):
    """`changes`: some of shares.FIELDS. `quota_limits(project_id, user_id)` is asked only when
    memory grows; `hosts(name)` is the host agent's proxy; `placement_policy`: the scheduler's (allocation
    ratios: memory growth must fit the instance's host). Returns the instance as it is after."""
    instance = access.visible_instance(session, actor, instance_id)  # 404 for what one cannot see
    policy.enforce(actor, "instance:set_resources", access.target(instance),
                   what="change an instance's resources")   # 403 for a teacher who can see it
    states.require_shares_settable(instance.state)
    flavor = session.get(Flavor, instance.flavor_id)
    shares.check_fits_flavor(changes, flavor)
    old = shares.current(instance)
    new = {**old, **changes}
    if new == old:
        return instance
    more = quotas.memory_growth(instance, new["memory_mib"])
    if more:
        limits = quota_limits(instance.project_id, instance.user_id)
        with quotas.charged(session, instance.project_id, instance.user_id, limits, more):
            _record(session, instance, old, new, actor, placement_policy)
    else:
        _record(session, instance, old, new, actor, placement_policy)
        session.commit()
    try:
        if instance.host:
            hosts(instance.host).set_domain_shares(shares.host_request(instance, flavor, new))
    except Exception as exc:  # whatever failed, the record goes back to what the guest has
        _undo(session, instance, flavor, old, new, hosts, exc)
        raise _as_host_failure(exc) from None
    instance_store.finish_action(session, instance.id, ACTION, "success")
    session.refresh(instance)
    return instance


def _record(session, instance, old, new, actor, placement_policy):
    """The new values, if the row still has the old ones and a state that allows a change, its
    host's allocation following the memory (refused when growth does not fit the host), and the
    action log entry. Left for the caller to commit."""
    instance_id = instance.id
    written = session.execute(
        update(Instance).where(Instance.id == instance_id, Instance.state.in_(states.SHARES_SETTABLE),
                               *[getattr(Instance, f) == old[f] for f in shares.FIELDS])
        .values(**new)).rowcount
    if written != 1:
        session.rollback()
        instance = session.get(Instance, instance_id)
        states.require_shares_settable(instance.state)
        raise Conflict("the instance's resources changed meanwhile; read it again and retry",
                       {"resources": ["changed by another request"]})
    grows = new["memory_mib"] - old["memory_mib"]
    if grows and not scheduler.adjust_allocation(session, instance_id, memory_mib=grows, policy=placement_policy):
        session.rollback()
        raise Conflict(f"host {instance.host} has no room for {grows} MiB more memory; an admin can "
                       "migrate the instance to a host with room", {"memory_mib": ["does not fit its host"]})
    changed = ", ".join(f"{f} {old[f]} -> {new[f]}" for f in shares.FIELDS if old[f] != new[f])
    instance_store.start_action(session, instance_id, ACTION, actor, changed, commit=False)


def _undo(session, instance, flavor, old, new, hosts, exc):
    session.rollback()
    put_back = session.execute(update(Instance).where(
        Instance.id == instance.id, *[getattr(Instance, f) == new[f] for f in shares.FIELDS]).values(**old)).rowcount
    if put_back and new["memory_mib"] != old["memory_mib"]:
        scheduler.adjust_allocation(session, instance.id, memory_mib=old["memory_mib"] - new["memory_mib"])
    session.commit()
    try:
        if instance.host:
            hosts(instance.host).set_domain_shares(shares.host_request(instance, flavor, old))
    except Exception as second:  # the first failure is the one reported; this one is logged
        log.error("could not put back the resources of %s on %s: %s", instance.id, instance.host, second)
    instance_store.finish_action(session, instance.id, ACTION, "error", str(exc))


def _as_host_failure(exc):
    if isinstance(exc, LabcloudError):
        return exc
    return HostOperationFailed(f"the host could not change the guest's resources: {type(exc).__name__}: {exc}")
