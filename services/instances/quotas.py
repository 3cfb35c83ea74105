"""Quotas of the instances service: what an instance counts against its project's quota (and its
owner's share of it), and the check made atomically with the write that takes more.

Limits belong to the accounts service (accounts.get_quota_limits, asked before the transaction
opens: an RPC never runs inside one). Usage is counted here, from the instance rows, by the state
properties of states.py: every instance not deleting or deleted takes one of `instances`; one whose
state uses compute takes its flavor's `vcpus` and its own `memory_mib` (shares.py: the owner may
set it up to the flavor's maximum, and pays for what is set). Nothing else is stored: an instance
once deleted, or a request that failed, no longer counts, so no reservation can leak.

`charged` makes the check and the write one transaction whose first statement updates the
project's row of `quota_locks`:
- SQLite: that update takes the database's write lock until the commit; as the transaction's first
  statement it waits for the lock (busy timeout) and then reads the newest committed data.
- PostgreSQL: it takes the row's lock; another transaction of the same project waits at its own
  first statement until this one ends, and (READ COMMITTED: every statement reads what was
  committed before it began) then counts the rows this one committed.
So two checks of one project never overlap, on any number of replicas, and whoever checks second
counts what the first one wrote. Nothing inside yields (common/db.py's rule).

Not checked: host observations (a guest started behind labcloud's back is shown as it is) and an
ownership transfer (the project's usage does not change). A resize charges its growth the same
way; a memory change (shares) charges its growth with `memory_growth`. The lock-count-check-write
itself is common.quota.charged, shared with the storage service's volumes (their own lock rows).
"""
from sqlalchemy import case, func, select

from common import quota
from services.instances import states
from services.instances.models import Flavor, Instance, QuotaLock

COUNTED = ("instances", "vcpus", "memory_mib")


def usage_in(flavor, state_name, memory_mib=None):
    """What one instance of `flavor` (with `memory_mib`, default the flavor's) in `state_name` takes."""
    state = states.state(state_name)
    compute = state.uses_compute_quota
    memory_mib = flavor.memory_mib if memory_mib is None else memory_mib
    return {"instances": int(state.counts_instance_quota), "vcpus": flavor.vcpus if compute else 0,
            "memory_mib": memory_mib if compute else 0}


def growth(flavor, from_state, to_state, memory_mib=None):
    """What moving an instance of `flavor` from one state to another takes more ({} if nothing)."""
    before = usage_in(flavor, from_state, memory_mib)
    after = usage_in(flavor, to_state, memory_mib)
    return {r: after[r] - before[r] for r in COUNTED if after[r] > before[r]}


def for_create(flavor):
    """A new instance is recorded `pending`, with its flavor's memory."""
    return growth(flavor, "deleted", "pending")


def memory_growth(instance, memory_mib):
    """What setting the instance's memory to `memory_mib` takes more, in its state ({} if nothing)."""
    if not states.state(instance.state).uses_compute_quota or memory_mib <= instance.memory_mib:
        return {}
    return {"memory_mib": memory_mib - instance.memory_mib}


def project_usage(session, project_id):
    """{"project": {resource: amount}, "users": {user_id: {resource: amount}}} of the project."""
    counts, compute = (Instance.state.in_(states.COUNTS_INSTANCE_QUOTA),
                       Instance.state.in_(states.USES_COMPUTE_QUOTA))
    rows = session.execute(
        select(Instance.user_id, func.sum(case((counts, 1), else_=0)),
               func.sum(case((compute, Flavor.vcpus), else_=0)),
               func.sum(case((compute, Instance.memory_mib), else_=0)))
        .join(Flavor, Flavor.id == Instance.flavor_id)
        .where(Instance.project_id == project_id,
               Instance.state.in_(states.COUNTS_INSTANCE_QUOTA + states.USES_COMPUTE_QUOTA))
        .group_by(Instance.user_id))
    users = {user_id: dict(zip(COUNTED, (int(v or 0) for v in amounts))) for user_id, *amounts in rows}
    project = {r: sum(u[r] for u in users.values()) for r in COUNTED}
    return {"project": project, "users": users}


def charged(session, project_id, user_id, limits, requested):
    """common.quota.charged on the instances' own lock rows and usage: check `requested` with the
    project locked, let the body write what takes it, commit both (QuotaExceeded: nothing written)."""
    return quota.charged(session, QuotaLock, project_id, user_id, limits, requested, project_usage)
