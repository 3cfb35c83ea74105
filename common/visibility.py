"""Lists of a project's rows (instances, volumes, snapshots) as the policy's list rules say: an
admin sees all; anyone else their own and all of the projects they manage; `project` narrows to
one project, which one must be a member of (outside it: NotFound, as accounts' get_project says)."""
from sqlalchemy import or_

from common import policy


def visible_rows(query, model, actor, project=None):
    """`query` (a select of `model`, which has user_id and project_id) narrowed to what `actor` sees."""
    if not policy.is_admin(actor):
        query = query.where(or_(model.user_id == actor["id"],
                                model.project_id.in_(policy.managed_project_ids(actor))))
    if project is not None:
        policy.enforce(actor, "project:get", {"project_id": project}, hidden=f"no project {project}")
        query = query.where(model.project_id == project)
    return query
