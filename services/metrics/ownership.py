"""Who may see and change the metrics service's rows that belong to a creator and, through an
instance, to a course: alarms and schedules follow the same rules, kept here once. `kind` is the
policy's prefix (`alarm`, `schedule`): `<kind>:create` on the instance (its owner, its course's
managers, admins), and the creator must be allowed each instance action the row will perform
(`instance:resize` is the owner's and admins': a teacher cannot schedule a student's resize);
`<kind>:get` and `<kind>:delete` on the row (its creator, the course's managers, admins), and
the instance's owner may read it too (a schedule that stops their instance is not a secret to
them); `<kind>:list` filtered to those. A row needs `user_id`, `project_id`,
`instance_owner_id` and `client_token` columns.

Creating is idempotent by the creator's client token (EC2's ClientToken): a second create with the
same token returns the row the first made, even when both race (the unique (user_id, client_token)
index lets one insert win)."""
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from common import policy
from common.errors import NotFound


def creation_fields(actor, kind, instance, action_types=()):
    """`project_id` and `instance_owner_id` of a new row on `instance` (the instances service's
    record, fetched as the actor: NotFound already raised if the actor cannot see it), once
    `<kind>:create` and `instance:<type>` for each of the row's actions allow it (403 otherwise)."""
    target = {"user_id": instance["user_id"], "project_id": instance.get("project")}
    policy.enforce(actor, f"{kind}:create", target)
    for action_type in action_types:
        policy.enforce(actor, f"instance:{action_type}", target, what=f"{action_type} this instance")
    return {"project_id": instance.get("project"), "instance_owner_id": instance["user_id"]}


def visible(session, model, row_id, actor, kind, verb="get"):
    """The row, if `<kind>:<verb>` lets the actor at it (or it is a `get` by the instance's
    owner); else NotFound (nothing tells it exists)."""
    row = session.get(model, row_id, populate_existing=True)
    hidden = f"no {kind} {row_id}"
    if row is None:
        session.commit()
        raise NotFound(hidden)
    if verb == "get" and row.instance_owner_id is not None and row.instance_owner_id == actor["id"]:
        return row
    policy.enforce(actor, f"{kind}:{verb}", {"user_id": row.user_id, "project_id": row.project_id},
                   hidden=hidden)
    return row


def visible_rows(query, model, actor, kind):
    """`query` limited to the rows the actor may list: their own, those on their instances and
    their managed courses'."""
    policy.enforce(actor, f"{kind}:list")
    if policy.is_admin(actor):
        return query
    return query.where(or_(model.user_id == actor["id"], model.instance_owner_id == actor["id"],
                           model.project_id.in_(policy.managed_project_ids(actor) or [-1])))


def _by_token(session, model, user_id, token):
    return session.scalars(select(model).where(model.user_id == user_id,
                                               model.client_token == token)).first()


def add_once(session, row):
    """Inserts `row` and commits; when its creator sent that client_token before, returns the row
    made then instead (and inserts nothing)."""
    model = type(row)
    if row.client_token is not None:
        earlier = _by_token(session, model, row.user_id, row.client_token)
        if earlier is not None:
            return earlier
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        earlier = row.client_token and _by_token(session, model, row.user_id, row.client_token)
        if not earlier:
            raise
        return earlier
    return row
