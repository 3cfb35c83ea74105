"""Quota LIMITS of projects and the caps of users inside them. Usage is counted by the services
that own the resources (the instances service for instances, vcpus and memory_mib), which ask
get_quota_limits when they check (common/quota.py)."""
from common.errors import NotFound
from common.quota import RESOURCES
from services.accounts import memberships, projects
from services.accounts.models import is_id

UNLIMITED = dict.fromkeys(RESOURCES)


def get_quota(session, actor, project_id):
    return projects.project_for(session, actor, project_id, "project:quota:get",
                                what="see this project's quota").quota


def set_quota(session, actor, project_id, limits):
    """Change the limits named in `limits` (null: unlimited). Returns (quota, changed)."""
    project = projects.project_for(session, actor, project_id, "project:quota:set",
                                   what="change quotas")
    before = project.quota
    project.set_quota(limits)
    session.commit()
    return project.quota, project.quota != before


def quota_limits(session, project_id, user_id):
    """{"project": limits, "user": the user's caps in it (all unlimited if none, or if the
    user is no member)}. NotFound if the project does not exist."""
    project = projects.find_project(session, project_id)
    if project is None:
        raise NotFound(f"no project {project_id}")
    return _limits_of(session, project, user_id)


def _limits_of(session, project, user_id):
    member = memberships.find(session, project.id, user_id) if is_id(user_id) else None
    return {"project": project.quota, "user": member.quota if member else dict(UNLIMITED)}


def usage_limits(session, actor, project_id):
    """What get_usage reports against: (project, limits as quota_limits gives them)."""
    project = projects.project_for(session, actor, project_id, "project:usage:get",
                                   what="see this project's usage")
    return project, _limits_of(session, project, actor["id"])


def merged_usage(*counts):
    """One count from those of the services that own the resources (instances: instances, vCPUs,
    memory; storage: volumes and their GiB; network: floating IPs), each {"project": {resource: n}, "users": {"<user id>":
    {resource: n}}}, as get_project_usage answers."""
    merged = {"project": {}, "users": {}}
    for counted in counts:
        merged["project"].update((counted or {}).get("project") or {})
        for user, resources in ((counted or {}).get("users") or {}).items():
            merged["users"].setdefault(user, {}).update(resources)
    return merged


def usage_report(project_id, limits, counted, user_id):
    """UsageSchema from the limits and what the owning services counted (merged_usage of their
    get_project_usage: {"project": {resource: n}, "users": {"<user id>": {resource: n}}}).
    A resource no service counted is reported as 0 in use."""
    counted = counted or {}
    mine = (counted.get("users") or {}).get(str(user_id), {})

    def table(limits_of, in_use):
        return {resource: {"limit": limits_of[resource], "in_use": int(in_use.get(resource, 0))}
                for resource in RESOURCES}
    return {"project_id": project_id,
            "resources": table(limits["project"], counted.get("project") or {}),
            "mine": table(limits["user"], mine)}
