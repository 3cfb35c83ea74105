"""Projects (courses, research groups): members, quotas, usage (the accounts service)."""
from gateway import schemas as own
from gateway.api.registry import ACCOUNTS, route


@route("GET", "/api/v1/projects", tag="projects", summary="List projects (an admin: all; others: theirs)",
       response=ACCOUNTS + "ProjectSchema", many=True)
def list_projects(rpc, actor):
    return rpc.accounts.list_projects(actor)


@route("POST", "/api/v1/projects", tag="projects", summary="Create a project, naming its managers (admin)",
       body=ACCOUNTS + "CreateProjectRequest", response=ACCOUNTS + "ProjectSchema", status=201,
       errors=(409,))
def create_project(rpc, actor, body):
    return rpc.accounts.create_project(actor, body)


@route("GET", "/api/v1/projects/<id:project_id>", tag="projects", summary="Get a project (its members)",
       response=ACCOUNTS + "ProjectSchema")
def get_project(rpc, actor, project_id):
    return rpc.accounts.get_project(actor, project_id)


@route("PATCH", "/api/v1/projects/<id:project_id>", tag="projects",
       summary="Change a project's description and defaults (manager or admin)",
       body=ACCOUNTS + "UpdateProjectRequest", response=ACCOUNTS + "ProjectSchema")
def update_project(rpc, actor, project_id, body):
    return rpc.accounts.update_project(actor, project_id, body)


@route("DELETE", "/api/v1/projects/<id:project_id>", tag="projects",
       summary="Delete an empty project (admin; 409 while it has instances)",
       response=own.DeletedSchema, errors=(409,))
def delete_project(rpc, actor, project_id):
    return rpc.accounts.delete_project(actor, project_id)


@route("GET", "/api/v1/projects/<id:project_id>/members", tag="projects",
       summary="A project's managers and members (manager or admin)",
       response=ACCOUNTS + "MemberSchema", many=True)
def list_members(rpc, actor, project_id):
    return rpc.accounts.list_members(actor, project_id)


@route("POST", "/api/v1/projects/<id:project_id>/members", tag="projects",
       summary="Add a member (manager or admin) or a manager (admin); adding again updates the role",
       body=ACCOUNTS + "AddMemberRequest", response=ACCOUNTS + "MemberSchema", status=201, errors=(409,))
def add_member(rpc, actor, project_id, body):
    return rpc.accounts.add_member(actor, project_id, body)


@route("PATCH", "/api/v1/projects/<id:project_id>/members/<id:user_id>", tag="projects",
       summary="Change a member's role (admin) or per-user quota cap (manager or admin)",
       body=ACCOUNTS + "UpdateMemberRequest", response=ACCOUNTS + "MemberSchema")
def update_member(rpc, actor, project_id, user_id, body):
    return rpc.accounts.update_member(actor, project_id, user_id, body)


@route("DELETE", "/api/v1/projects/<id:project_id>/members/<id:user_id>", tag="projects",
       summary="Remove a member (manager or admin)", response=own.DeletedSchema)
def remove_member(rpc, actor, project_id, user_id):
    return rpc.accounts.remove_member(actor, project_id, user_id)


@route("POST", "/api/v1/projects/<id:project_id>/members/import", tag="projects",
       summary="Import a class list (CSV: username,email,full_name[,course]) into the project: all rows "
               "or none (manager or admin)",
       body="csv", body_type="csv", response=ACCOUNTS + "ImportReportSchema")
def import_members(rpc, actor, project_id, body):
    return rpc.accounts.import_users(actor, {"csv": body, "project": project_id})


@route("GET", "/api/v1/projects/<id:project_id>/quota", tag="projects",
       summary="A project's quota (null: unlimited)", response=ACCOUNTS + "QuotaSchema")
def get_quota(rpc, actor, project_id):
    return rpc.accounts.get_quota(actor, project_id)


@route("PUT", "/api/v1/projects/<id:project_id>/quota", tag="projects",
       summary="Set a project's quota (admin); fields left out keep their value, null is unlimited",
       body=ACCOUNTS + "QuotaSchema", response=ACCOUNTS + "QuotaSchema")
def set_quota(rpc, actor, project_id, body):
    return rpc.accounts.set_quota(actor, project_id, body)


@route("GET", "/api/v1/projects/<id:project_id>/usage", tag="projects",
       summary="A project's usage against its quota, and mine inside it", response=ACCOUNTS + "UsageSchema")
def get_usage(rpc, actor, project_id):
    return rpc.accounts.get_usage(actor, project_id)
