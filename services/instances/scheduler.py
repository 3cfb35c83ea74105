"""Placement: the one module that decides where an instance runs (placement.py: filters, weighers).

Each host row carries what its instances take (allocated vCPUs, memory, disk, instance count), so
one decision is one SQL query over the hosts table that filters and weighs in the database, then
a claim of the best candidate. The counters change in the transaction of the instance change
that takes or frees them: instance_store.move calls instance_moved (a move into or out of the
states that hold host resources), a change of an instance's size calls adjust_allocation.

The claim is what stays correct across replicas: it locks the host row (an UPDATE that also
checks the host is still enabled and up), recounts that host from its instance rows (healing
counters that drifted), checks the fit, and returns with the lock held; the caller's move to
`building` (instance_moved adds the counters) commits both. A second claim of the same host
waits for that commit and then sees the first instance. recount_allocations rechecks every host.
"""
import datetime as dt
import logging

from sqlalchemy import bindparam, case, exists, func, or_, select, update

from common.clock import utcnow
from common.errors import CapacityExhausted, InvalidInput, NotFound
from services.instances import placement, states
from services.instances.models import Flavor, Host, Instance

log = logging.getLogger(__name__)

HOST_STATES = ("enabled", "disabled", "draining")   # only `enabled` takes new instances
CANDIDATES = 8    # best hosts fetched per query; the next is claimed when one was taken meanwhile
ATTEMPTS = 3      # queries before giving up on hosts that other replicas keep taking
request_for = placement.request_for


def record_heartbeat(session, heartbeat, now, policy):
    """Returns (host, returned): returned is True when the host is new, had gone quiet or its agent
    restarted (a restarted `labcloud run`), so its instances' states need checking against what it
    runs now. A heartbeat's disk_gib (its storage pool) is recorded when the agent sends one."""
    host = session.get(Host, heartbeat["host"])
    started = heartbeat.get("agent_started")
    returned = not is_up(host, now, policy) or (started is not None and host.agent_started != started)
    if host is None:
        host = Host(name=heartbeat["host"], state="enabled")
        session.add(host)
    host.hypervisor = heartbeat["hypervisor"]
    host.vcpus = heartbeat["vcpus"]
    host.memory_mib = heartbeat["memory_mib"]
    if heartbeat.get("disk_gib") is not None:
        host.disk_gib = heartbeat["disk_gib"]
    host.memory_free_mib, host.load_1m = heartbeat.get("memory_free_mib"), heartbeat.get("load_1m")
    host.last_heartbeat = now
    if started is not None:
        host.agent_started = started
    session.commit()
    return host, returned


def list_hosts(session, policy=None, now=None):
    """Every host with its state, whether it is up, its size, what is allocated on it, its
    capacity (size x allocation ratio) and its instances."""
    policy, now = policy or policy_from_config({}), now or utcnow()
    # populate_existing: the counters change by SQL statements, never through loaded rows.
    hosts = session.scalars(select(Host).order_by(Host.name).execution_options(populate_existing=True)).all()
    return [describe(host, policy, now) for host in hosts]


def describe(host, policy, now):
    return {
        "name": host.name, "hypervisor": host.hypervisor, "state": host.state, "up": is_up(host, now, policy),
        "last_heartbeat": host.last_heartbeat, "vcpus": host.vcpus, "memory_mib": host.memory_mib,
        "disk_gib": host.disk_gib, "allocated_vcpus": host.allocated_vcpus,
        "allocated_memory_mib": host.allocated_memory_mib, "allocated_disk_gib": host.allocated_disk_gib,
        "capacity_vcpus": placement.capacity(host.vcpus, policy, "cpu"),
        "capacity_memory_mib": placement.capacity(host.memory_mib, policy, "memory"),
        "capacity_disk_gib": placement.capacity(host.disk_gib, policy, "disk"),
        "instances": host.allocated_instances,
        "memory_free_mib": host.memory_free_mib, "load_1m": host.load_1m,
        "used_memory_mib": host.allocated_memory_mib, "used_vcpus": host.allocated_vcpus}


def set_host_state(session, name, state, policy=None, now=None):
    """enabled, disabled or draining (an admin's choice; only enabled hosts take new instances)."""
    if state not in HOST_STATES:
        raise InvalidInput(f"host state {state!r}: one of {', '.join(HOST_STATES)}",
                           {"state": [f"one of {', '.join(HOST_STATES)}"]})
    host = session.get(Host, name, populate_existing=True)
    if host is None:
        raise NotFound(f"no host {name}")
    host.state = state
    session.commit()
    return describe(host, policy or policy_from_config({}), now or utcnow())


def is_up(host, now, policy):
    """A host is up while its heartbeats are fresh."""
    return host is not None and host.last_heartbeat is not None and host.last_heartbeat >= _fresh_after(now, policy)


def _fresh_after(now, policy):
    return now - dt.timedelta(seconds=policy["host_stale_after"])


def is_quiet_clause(name, now, policy):
    """SQL condition: the host `name` is not up (is_up's opposite, evaluated by the database)."""
    fresh_after = _fresh_after(now, policy)
    return exists().where(Host.name == name, or_(Host.last_heartbeat.is_(None), Host.last_heartbeat < fresh_after))


def host_is_up(session, name, now, policy):
    return is_up(session.get(Host, name), now, policy)


# ----- placing ---------------------------------------------------------------------------------

def pick_host(session, request, now, policy):
    """The host for `request` (placement.Request, a dict of its fields, or a bare Flavor), claimed:
    the transaction is left open with the host row locked, for the caller's move to `building`
    (instance_store.move) to commit. Commits only counter corrections of hosts it passed over, so
    call it with nothing of your own pending. Raises CapacityExhausted naming the filter that
    removed the last candidates and what each filter removed (that count runs only then)."""
    request = placement.as_request(request)
    image_refusal = placement.image_refusal(request)
    if image_refusal is None:
        params = placement.parameters(request, _fresh_after(now, policy), policy)
        query = placement.candidates(request.avoids_group, placement.strategy(policy), CANDIDATES, request.moves)
        for _attempt in range(ATTEMPTS):
            names = session.scalars(query, params).all()
            if not names:
                break
            for name in names:
                if claim(session, name, request, now, policy):
                    return name
                session.commit()   # what the claim corrected; the lock it took goes
    session.rollback()
    raise _refusal(session, request, now, policy, image_refusal)


def claim(session, name, request, now, policy):
    """Lock host `name` if it is still enabled and up, recount it from its instance rows (and
    correct its counters if they were off), and say whether `request` fits there, anti-affinity
    included. True leaves the lock held; the caller's move to `building` adds the counters."""
    params = {"host_name": name, "fresh_after": _fresh_after(now, policy), "user_id": request.user_id,
              "group": request.group}
    host = session.execute(_LOCK_ENABLED_AND_UP, params).first()
    if host is None:
        return False
    counted, group_members = _recount(session, name, tuple(host[3:]), params)
    if request.avoids_group and group_members:
        return False
    return placement.host_fits(counted, tuple(host[:3]), request, policy)


def _refusal(session, request, now, policy, image_refusal):
    total = session.scalar(select(func.count()).select_from(Host))
    if image_refusal is not None:
        last, removed = "image", {"image": total}
    else:
        params = placement.parameters(request, _fresh_after(now, policy), policy)
        last, removed = None, dict(session.execute(placement.refusals(request.avoids_group, request.moves),
                                                   params).all())
    session.rollback()
    last, message = placement.refusal_message(request, total, removed, image_refusal, last)
    return CapacityExhausted(message, {"filter": [last or "down"],
                                       "removed": [f"{f}: {removed.get(f, 0)}" for f in placement.FILTERS]})


# ----- allocation counters ---------------------------------------------------------------------

ALLOCATED = (Host.allocated_vcpus, Host.allocated_memory_mib, Host.allocated_disk_gib, Host.allocated_instances)
COUNTERS = tuple(column.key for column in ALLOCATED)
NO_SYNC = {"synchronize_session": False}
# Locks the host row (an UPDATE that changes nothing, for SQLite and PostgreSQL alike) and reads it.
_LOCK = (update(Host).where(Host.name == bindparam("host_name")).values(state=Host.state)
         .returning(Host.vcpus, Host.memory_mib, Host.disk_gib, *ALLOCATED).execution_options(**NO_SYNC))
_LOCK_ENABLED_AND_UP = _LOCK.where(Host.state == "enabled", Host.last_heartbeat >= bindparam("fresh_after"))
_HOLDS = Instance.state.in_(states.HOLDS_HOST_RESOURCES)
# What one host's instances take (as the counters should say), and how many are in the request's group.
_RECOUNT = (select(func.coalesce(func.sum(Flavor.vcpus), 0), func.coalesce(func.sum(Instance.memory_mib), 0),
                   func.coalesce(func.sum(Flavor.disk_gib), 0), func.count(),
                   func.coalesce(func.sum(case((placement.in_group(), 1), else_=0)), 0))
            .join(Flavor, Flavor.id == Instance.flavor_id)
            .where(or_(Instance.host == bindparam("host_name"), Instance.migrating_to == bindparam("host_name")),
                   _HOLDS))


def _recount(session, name, stored, params):
    """Recount host `name` under its row lock (taken before this statement began: every change of
    its instances is then either committed, so counted here, or waiting for the lock to add
    itself); correct its counters when `stored` differs. Returns (counted, group members)."""
    *counted, group_members = session.execute(_RECOUNT, params).one()
    counted = tuple(int(v) for v in counted)
    if counted != stored:
        log.warning("host %s: allocation counters %s, recounted %s: corrected", name, stored, counted)
        session.execute(update(Host).where(Host.name == name).values(dict(zip(COUNTERS, counted)))
                        .execution_options(**NO_SYNC))
    return counted, group_members


def instance_moved(session, instance_id, from_state, to_state):
    """instance_store.move's hook, in the move's transaction: a move into the states that hold
    host resources adds the instance to its host's counters, a move out of them takes it off."""
    took = states.state(to_state).holds_host_resources
    if took == states.state(from_state).holds_host_resources:
        return
    host, migrating_to = session.execute(select(Instance.host, Instance.migrating_to)
                                         .where(Instance.id == instance_id)).one()
    for name in (host, migrating_to):   # (a delete during a migration: off both hosts)
        if name is not None:
            add_to_host(session, name, instance_id, 1 if took else -1)


def add_to_host(session, name, instance_id, sign=1):
    """The instance's vCPUs, memory, disk and one instance added to (sign -1: taken off) host
    `name`'s counters, in the caller's transaction: a migration counts it on its destination from
    its claim until the move ends."""
    row = session.execute(select(Instance.memory_mib, Flavor.vcpus, Flavor.disk_gib)
                          .join(Flavor, Flavor.id == Instance.flavor_id).where(Instance.id == instance_id)).one()
    _add(session, name, {"allocated_vcpus": sign * row.vcpus, "allocated_memory_mib": sign * row.memory_mib,
                         "allocated_disk_gib": sign * row.disk_gib, "allocated_instances": sign})


def adjust_allocation(session, instance_id, vcpus=0, memory_mib=0, disk_gib=0, policy=None):
    """A size change of an instance (its memory_mib set, a resize), in that change's transaction,
    after the instance row was written: its host's counters follow while it holds host resources.
    With `policy`, growth that does not fit the host (under its allocation ratios) is refused:
    returns False and changes nothing (roll back the instance change then)."""
    host = session.scalar(select(Instance.host).where(Instance.id == instance_id, _HOLDS))
    if host is None:
        return True
    conditions = []
    if policy is not None:
        for grows, allocated, total, resource in ((vcpus, Host.allocated_vcpus, Host.vcpus, "cpu"),
                                                  (memory_mib, Host.allocated_memory_mib, Host.memory_mib, "memory"),
                                                  (disk_gib, Host.allocated_disk_gib, Host.disk_gib, "disk")):
            if grows > 0:
                conditions.append(or_(total.is_(None), placement.fits(
                    allocated, grows, total, placement.ratio(policy, resource))))
    return _add(session, host, {"allocated_vcpus": vcpus, "allocated_memory_mib": memory_mib,
                                "allocated_disk_gib": disk_gib}, *conditions)


def _add(session, name, deltas, *conditions):
    return session.execute(update(Host).where(Host.name == name, *conditions).values(
        {key: getattr(Host, key) + delta for key, delta in deltas.items()}).execution_options(**NO_SYNC)).rowcount == 1


def counted_allocations(session):
    """{host: (vcpus, memory_mib, disk_gib, instances)} counted from the instance rows (an
    instance that migrates counts on its host and on its destination)."""
    counted = {}
    for column in (Instance.host, Instance.migrating_to):
        for host, *values in session.execute(
                select(column, func.sum(Flavor.vcpus), func.sum(Instance.memory_mib), func.sum(Flavor.disk_gib),
                       func.count()).join(Flavor, Flavor.id == Instance.flavor_id)
                .where(_HOLDS, column.is_not(None)).group_by(column)):
            before = counted.get(host, (0, 0, 0, 0))
            counted[host] = tuple(a + int(v or 0) for a, v in zip(before, values))
    return counted


def stored_allocations(session):
    """{host: (vcpus, memory_mib, disk_gib, instances)} as the counters say."""
    return {name: tuple(values) for name, *values in session.execute(select(Host.name, *ALLOCATED))}


def recount_allocations(session):
    """Check every host's counters against its instance rows and correct those that differ (for
    reconcile). Returns [(host, stored, counted)] of the corrected ones."""
    counted, corrected = counted_allocations(session), []
    for name, stored in stored_allocations(session).items():
        if stored != counted.get(name, (0, 0, 0, 0)):
            host = session.execute(_LOCK, {"host_name": name}).first()   # then again, under the lock
            if host is None:
                continue
            stored = tuple(host[3:])
            recounted, _members = _recount(session, name, stored, {"host_name": name, "user_id": None, "group": None})
            if recounted != stored:
                corrected.append((name, stored, recounted))
            session.commit()
    session.commit()
    return corrected


def policy_from_config(config):
    """Allocation ratios (Nova's defaults; MEMORY_OVERCOMMIT and CPU_OVERCOMMIT are read when the
    new keys are not set), the placement strategy (spread or pack), when a quiet host is down."""
    def setting(key, old_key=None):
        for name in (key, old_key):
            if name and config.get(name) not in (None, ""):
                return config[name]
        return None

    policy = {
        "cpu_allocation_ratio": setting("CPU_ALLOCATION_RATIO", "CPU_OVERCOMMIT"),
        "memory_allocation_ratio": setting("MEMORY_ALLOCATION_RATIO", "MEMORY_OVERCOMMIT"),
        "disk_allocation_ratio": setting("DISK_ALLOCATION_RATIO"),
        "strategy": setting("PLACEMENT_STRATEGY") or "spread",
        "host_stale_after": float(setting("HOST_STALE_AFTER") or 30),
    }
    for resource in ("cpu", "memory", "disk"):
        policy[f"{resource}_allocation_ratio"] = placement.ratio(policy, resource)
    placement.strategy(policy)   # a typo in PLACEMENT_STRATEGY fails at start, not at the first create
    return policy
