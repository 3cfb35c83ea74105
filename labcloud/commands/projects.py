"""`labcloud project ...` (courses and their members) and `labcloud quota ...` (their limits)."""
import click

from labcloud.commands import output
from labcloud.commands.base import (QUOTA_FIELDS, confirm, connect, group, import_csv, pop_quota,
                                    project_argument, quota_body, quota_options, user_argument, yes_option)

PROJECT_COLUMNS = [("id", "ID"), ("name", "NAME"), ("description", "DESCRIPTION"),
                   ("default_lease_hours", "LEASE_HOURS"), ("idle_policy", "IDLE_POLICY")]
MEMBER_COLUMNS = [(lambda m: m.get("user_id", m.get("id")), "USER_ID"), ("username", "USERNAME"),
                  ("role", "ROLE"), ("quota", "QUOTA")]


@group()
def project():
    """Projects (courses): their settings and members."""


def _settings(client, values):
    """The project fields given on the command line, names resolved to ids."""
    body = {}
    for field in ("name", "description", "default_lease_hours", "idle_policy"):
        if values.get(field) is not None:
            body[field] = values[field]
    if values.get("default_flavor") is not None:
        body["default_flavor"] = client.find_flavor(values["default_flavor"])["id"]
    if values.get("default_image") is not None:
        body["default_image"] = client.find_image(values["default_image"])["id"]
    return body


def settings_options(command):
    for option in reversed([
            click.option("--description"),
            click.option("--default-lease-hours", type=click.IntRange(min=1), help="lease of a new instance"),
            click.option("--default-flavor", metavar="FLAVOR", help="flavor name or id"),
            click.option("--default-image", metavar="IMAGE", help="image name or id"),
            click.option("--idle-policy", type=click.Choice(["suspend", "none"]),
                         help="what happens to idle instances")]):
        command = option(command)
    return command


@project.command("list")
@output.json_option
def project_list(as_json):
    """Your projects; every project for an admin (GET /projects)."""
    output.emit(connect().get("/projects"), as_json, columns=PROJECT_COLUMNS)


@project.command("show")
@project_argument()
@output.json_option
def project_show(project, as_json):
    """One project's settings (GET /projects/{id})."""
    client = connect()
    output.emit(client.get(f"/projects/{client.project_id(project)}"), as_json)


@project.command("create")
@click.argument("name")
@settings_options
@click.option("--manager", "managers", metavar="USER", multiple=True, help="a manager (repeatable)")
@quota_options
@output.json_option
def project_create(name, managers, as_json, **values):
    """Create a project (admin).

    POST /projects, with its settings, managers and quota."""
    client = connect()
    quota = pop_quota(values)
    body = {"name": name, **_settings(client, values)}
    if managers:
        body["managers"] = [client.user_id(m) for m in managers]
    if quota:
        body["quota"] = quota
    created = client.post("/projects", body)
    output.answer(created, as_json, lambda: f"created project {created['name']} ({created['id']})")


@project.command("update")
@project_argument()
@click.option("--name", help="rename it")
@settings_options
@output.json_option
def project_update(project, as_json, **values):
    """Change a project's settings (manager, admin).

    PATCH /projects/{id} with only the options given."""
    client = connect()
    body = _settings(client, values)
    if not body:
        raise click.UsageError("nothing to change: give at least one option")
    output.emit(client.patch(f"/projects/{client.project_id(project)}", body), as_json)


@project.command("delete")
@project_argument()
@yes_option
@output.json_option
def project_delete(project, yes, as_json):
    """Delete a project without instances (admin).

    DELETE /projects/{id}."""
    client = connect()
    project_id = client.project_id(project)
    confirm(yes, f"delete project {project}?")
    answer = client.delete(f"/projects/{project_id}")
    output.answer(answer, as_json, lambda: f"project {project} deleted")


@project.command("members")
@project_argument()
@output.json_option
def project_members(project, as_json):
    """A project's members and managers.

    GET /projects/{id}/members."""
    client = connect()
    output.emit(client.get(f"/projects/{client.project_id(project)}/members"), as_json, columns=MEMBER_COLUMNS)


@project.command("add-member")
@project_argument()
@user_argument()
@click.option("--role", type=click.Choice(["member", "manager"]), default="member", show_default=True,
              help="manager: admins only")
@output.json_option
def project_add_member(project, user, role, as_json):
    """Add a user to a project, or change their role.

    POST /projects/{id}/members. Only an admin makes managers."""
    client = connect()
    project_id = client.project_id(project)
    member = client.post(f"/projects/{project_id}/members", {"user": client.user_id(user), "role": role})
    output.answer(member, as_json, lambda: f"{user} is a {role} of {project}")


@project.command("remove-member")
@project_argument()
@user_argument()
@output.json_option
def project_remove_member(project, user, as_json):
    """Take a user out of a project.

    DELETE /projects/{id}/members/{user_id}."""
    client = connect()
    project_id = client.project_id(project)
    answer = client.delete(f"/projects/{project_id}/members/{client.user_id(user, project=project_id)}")
    output.answer(answer, as_json, lambda: f"{user} removed from {project}")


@project.command("import")
@project_argument()
@click.argument("csv_file", metavar="FILE.csv", type=click.File("rb"))
@output.json_option
def project_import(project, csv_file, as_json):
    """Add the users of a CSV file to a project.

    POST /projects/{id}/members/import, header username,email,full_name[,course]; new accounts
    are created. Nothing is written if any row has an error (exit status 1)."""
    client = connect()
    import_csv(client, f"/projects/{client.project_id(project)}/members/import", csv_file, as_json)


# -- quota -----------------------------------------------------------------------------------------

@group()
def quota():
    """A project's limits, and what it uses of them."""


QUOTA_COLUMNS = [("resource", "RESOURCE"), ("limit", "LIMIT")]


def _limit(value):
    return "unlimited" if value is None else value


@quota.command("show")
@project_argument()
@output.json_option
def quota_show(project, as_json):
    """A project's limits (GET /projects/{id}/quota)."""
    client = connect()
    limits = client.get(f"/projects/{client.project_id(project)}/quota")
    if as_json:
        return output.print_json(limits)
    output.table(_quota_rows(limits), QUOTA_COLUMNS)


def _quota_rows(limits):
    names = [f for f in QUOTA_FIELDS if f in limits] + [f for f in limits if f not in QUOTA_FIELDS]
    return [{"resource": name, "limit": _limit(limits[name])} for name in names]


@quota.command("set")
@project_argument()
@quota_options
@output.json_option
def quota_set(project, as_json, **values):
    """Change some limits (admin).

    PUT /projects/{id}/quota with only the limits given; `unlimited` is sent as null."""
    body = quota_body(values)
    if not body:
        raise click.UsageError("give at least one limit, e.g. --vcpus 8 or --instances unlimited")
    client = connect()
    limits = client.put(f"/projects/{client.project_id(project)}/quota", body)
    if as_json:
        return output.print_json(limits)
    output.table(_quota_rows(limits), QUOTA_COLUMNS)


@quota.command("usage")
@project_argument()
@output.json_option
def quota_usage(project, as_json):
    """What a project uses of its limits, and your share.

    GET /projects/{id}/usage."""
    client = connect()
    usage = client.get(f"/projects/{client.project_id(project)}/usage")
    if as_json:
        return output.print_json(usage)
    resources, mine = usage.get("resources") or {}, usage.get("mine") or {}
    names = [f for f in QUOTA_FIELDS if f in resources or f in mine]
    names += [name for name in list(resources) + list(mine) if name not in names]
    rows = [{"resource": name,
             "in_use": (resources.get(name) or {}).get("in_use"),
             "limit": _limit((resources.get(name) or {}).get("limit")),
             "mine": _share(mine.get(name))} for name in dict.fromkeys(names)]
    output.table(rows, [("resource", "RESOURCE"), ("in_use", "IN_USE"), ("limit", "LIMIT"), ("mine", "YOURS")])


def _share(entry):
    if not entry:
        return None
    return f"{entry.get('in_use', 0)} of {_limit(entry.get('limit'))}"


COMMANDS = [project, quota]
