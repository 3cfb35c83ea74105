"""Quotas: the resources, and the one check every owning service makes (Nova's counting quotas).

Limits belong to a project (and optionally to one user inside it) and are kept by the accounts
service. Usage is counted by the service that owns each resource, from its own rows, inside a
transaction that holds that project's quota lock, so concurrent requests on any number of replicas
are checked one after another and the new row is committed with the check (services/instances/
quotas.py). A resource that is gone, or a request that failed, no longer counts: there is no
separate reservation to leak.
"""
from contextlib import contextmanager

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from common.errors import QuotaExceeded

RESOURCES = ("instances", "vcpus", "memory_mib", "volume_gib", "floating_ips", "volumes")


def check(limits, usage, requested, scope="project"):
    """Raise QuotaExceeded naming every resource that `requested` would take over its limit.

    limits: {resource: int or None}; None (or missing) is unlimited.
    usage, requested: {resource: int}; `scope` words the message ("project", "your share")."""
    over = {}
    for resource, amount in requested.items():
        limit = (limits or {}).get(resource)
        if limit is None or amount <= 0:
            continue
        used = usage.get(resource, 0)
        if used + amount > limit:
            over[resource] = [f"{scope} limit {limit}, in use {used}, requested {amount}"]
    if over:
        detail = "; ".join(f"{name}: {problems[0]}" for name, problems in sorted(over.items()))
        raise QuotaExceeded(f"over quota ({detail})", over)


def check_all(limit_sets, usage_sets, requested):
    """Check the project's limits and then the user's cap inside it.
    limit_sets/usage_sets: {"project": ..., "user": ...}."""
    check(limit_sets.get("project"), usage_sets.get("project", {}), requested, "project")
    check(limit_sets.get("user"), usage_sets.get("user", {}), requested, "your share: user")


@contextmanager
def charged(session, lock_model, project_id, user_id, limits, requested, count_usage):
    """Check that `requested` fits `limits` ({"project": ..., "user": ...} as accounts gives them)
    with the project locked, let the body write what takes it (without committing), commit both.
    Over quota: QuotaExceeded, nothing written. `user_id`: whose share of the project it takes.

    `lock_model`: the owning service's table of per-project lock rows (project_id, counter); its
    update is the transaction's first statement (see services/instances/quotas.py for why that
    serialises the checks of one project on SQLite and PostgreSQL). `count_usage(session,
    project_id)` -> {"project": {resource: n}, "users": {user_id: {resource: n}}}, from the
    service's own rows."""
    session.commit()  # what the caller read so far is over: the lock opens the transaction
    try:
        lock_project(session, lock_model, project_id)
        counted = count_usage(session, project_id)
        check_all(limits, {"project": counted["project"], "user": counted["users"].get(user_id, {})},
                  requested)
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise


def lock_project(session, lock_model, project_id):
    take = (update(lock_model).where(lock_model.project_id == project_id)
            .values(counter=lock_model.counter + 1))
    if session.execute(take).rowcount == 1:
        return
    # The project's first check: make its row in a transaction of its own, then take it.
    session.rollback()
    try:
        session.execute(insert(lock_model).values(project_id=project_id, counter=0))
        session.commit()
    except IntegrityError:  # a concurrent first check made it
        session.rollback()
    if session.execute(take).rowcount != 1:
        raise RuntimeError(f"quota lock row of project {project_id} vanished")
