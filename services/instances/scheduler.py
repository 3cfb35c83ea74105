"""Placement: pick an enabled host, heard from recently, with room for the flavor."""
import datetime as dt

from sqlalchemy import exists, func, or_, select

from common.errors import CapacityExhausted
from services.instances import states
from services.instances.models import Flavor, Host, Instance


def record_heartbeat(session, heartbeat, now, policy):
    """Returns (host, returned): returned is True when the host is new, had gone quiet or its agent
    restarted (a restarted `labcloud run`), so its instances' states need checking against what it
    runs now."""
    host = session.get(Host, heartbeat["host"])
    started = heartbeat.get("agent_started")
    returned = not is_up(host, now, policy) or (started is not None and host.agent_started != started)
    if host is None:
        host = Host(name=heartbeat["host"], state="enabled")
        session.add(host)
    host.hypervisor = heartbeat["hypervisor"]
    host.vcpus = heartbeat["vcpus"]
    host.memory_mib = heartbeat["memory_mib"]
    host.last_heartbeat = now
    if started is not None:
        host.agent_started = started
    session.commit()
    return host, returned


def list_hosts(session):
    usage = host_usage(session)
    hosts = session.scalars(select(Host).order_by(Host.name)).all()
    return [{"name": h.name, "hypervisor": h.hypervisor, "vcpus": h.vcpus, "memory_mib": h.memory_mib,
             "state": h.state, "last_heartbeat": h.last_heartbeat,
             "used_memory_mib": usage.get(h.name, (0, 0))[0], "used_vcpus": usage.get(h.name, (0, 0))[1]}
            for h in hosts]


def host_usage(session):
    rows = session.execute(
        select(Instance.host, func.sum(Flavor.memory_mib), func.sum(Flavor.vcpus))
        .join(Flavor, Flavor.id == Instance.flavor_id)
        .where(Instance.state.in_(states.HOLDS_HOST_RESOURCES), Instance.host.is_not(None))
        .group_by(Instance.host))
    return {host: (memory or 0, vcpus or 0) for host, memory, vcpus in rows}


def is_up(host, now, policy):
    """A host is up while its heartbeats are fresh."""
    fresh_after = now - dt.timedelta(seconds=policy["host_stale_after"])
    return host is not None and host.last_heartbeat is not None and host.last_heartbeat >= fresh_after


def is_quiet_clause(name, now, policy):
    """SQL condition: the host `name` is not up (is_up's opposite, evaluated by the database)."""
    fresh_after = now - dt.timedelta(seconds=policy["host_stale_after"])
    return exists().where(Host.name == name, or_(Host.last_heartbeat.is_(None), Host.last_heartbeat < fresh_after))


def host_is_up(session, name, now, policy):
    return is_up(session.get(Host, name), now, policy)


def pick_host(session, flavor, now, policy):
    """Most free memory first (spreads load); raises CapacityExhausted naming why."""
    hosts = session.scalars(select(Host).where(Host.state == "enabled")).all()
    live = [h for h in hosts if is_up(h, now, policy)]
    if not live:
        raise CapacityExhausted("no hypervisor host is up")
    usage = host_usage(session)
    best, best_free = None, None
    for host in live:
        used_memory, used_vcpus = usage.get(host.name, (0, 0))
        free_memory = host.memory_mib * policy["memory_overcommit"] - used_memory
        free_vcpus = host.vcpus * policy["cpu_overcommit"] - used_vcpus
        if free_memory >= flavor.memory_mib and free_vcpus >= flavor.vcpus:
            if best_free is None or free_memory > best_free:
                best, best_free = host, free_memory
    if best is None:
        raise CapacityExhausted(f"no host has room for flavor {flavor.name}")
    return best.name


def policy_from_config(config):
    return {
        "memory_overcommit": float(config.get("MEMORY_OVERCOMMIT", 1.0)),
        "cpu_overcommit": float(config.get("CPU_OVERCOMMIT", 4.0)),
        "host_stale_after": float(config.get("HOST_STALE_AFTER", 30)),
    }
