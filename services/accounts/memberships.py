"""Who belongs to which project, as what (Keystone's role assignments). Storage only: callers
decide with common/policy.py whether the actor may make the change, and commit."""
from sqlalchemy import delete, select

from services.accounts.models import ProjectMember

# Accounts that can no longer be given a project.
GONE_STATUSES = ("rejected", "deleted")


def memberships_of(session, user_id):
    """[{"id": project id, "role": role}] of the user, as the actor carries them."""
    rows = session.execute(select(ProjectMember.project_id, ProjectMember.role)
                           .where(ProjectMember.user_id == user_id)
                           .order_by(ProjectMember.project_id))
    return [{"id": project_id, "role": role} for project_id, role in rows]


def find(session, project_id, user_id):
    return session.get(ProjectMember, (project_id, user_id))


def members_of(session, project_id):
    return list(session.scalars(select(ProjectMember).where(ProjectMember.project_id == project_id)
                                .order_by(ProjectMember.user_id)))


def join(session, project_id, user_id, role, now, quota=None):
    """Give the user `role` in the project (and these caps, if given), adding the membership if
    it is missing. In the session, not committed. Returns (membership, changed)."""
    member = find(session, project_id, user_id)
    if member is None:
        member = ProjectMember(project_id=project_id, user_id=user_id, role=role, created_at=now)
        member.set_quota(quota or {})
        session.add(member)
        session.flush()
        return member, True
    return member, change(member, role=role, quota=quota)


def change(member, role=None, quota=None):
    """Set the role and the caps named in `quota` (a partial dict). True if anything changed."""
    changed = False
    if role is not None and role != member.role:
        member.role, changed = role, True
    for resource, cap in (quota or {}).items():
        if member.quota[resource] != cap:
            member.set_quota({resource: cap})
            changed = True
    return changed


def leave_all(session, user_id):
    """Remove the user from every project (not committed). Returns how many memberships went."""
    return session.execute(delete(ProjectMember).where(ProjectMember.user_id == user_id)).rowcount


def delete_all_of_project(project_id):
    """The statement removing every membership of a project."""
    return delete(ProjectMember).where(ProjectMember.project_id == project_id)
