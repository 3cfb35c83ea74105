"""Quotas: the resources, and the one check every owning service makes (Nova's counting quotas).

Limits belong to a project (and optionally to one user inside it) and are kept by the accounts
service. Usage is counted by the service that owns each resource, from its own rows, inside a
transaction that holds that project's quota lock, so concurrent requests on any number of replicas
are checked one after another and the new row is committed with the check (services/instances/
quotas.py). A resource that is gone, or a request that failed, no longer counts: there is no
separate reservation to leak.
"""
from common.errors import QuotaExceeded

RESOURCES = ("instances", "vcpus", "memory_mib", "volume_gib", "floating_ips")


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
