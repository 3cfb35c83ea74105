"""Teachers: their courses, members, the course's instances, defaults and subnet blocks.

Every page asks the services, which decide: a student opening a course page is refused by
`accounts.list_members` (403), a course they cannot see by `accounts.get_project` (404), and the
refusal is the page. A refused form re-renders the course page with the service's errors next to
the fields of the form that was sent (`failed` names it), with the service's status.

View functions are named teacher_* so their endpoints cannot clash with other views' (the
endpoint is the function's name).
"""
from flask import redirect, render_template, request

from common import policy
from common.errors import CapacityExhausted, InvalidInput
from gateway.portal.forms import FormErrors, attempt, body_from_form, form_page
from gateway.portal.gather import gather
from gateway.portal.registry import page
from gateway.portal.views import network

ACCOUNTS = "services.accounts.schemas:"
NETWORK = "services.network.schemas:"
QUOTA_RESOURCES = ("instances", "vcpus", "memory_mib", "volume_gib", "floating_ips", "volumes")  # QuotaSchema's
ROLES = (("member", "member"), ("manager", "manager"))  # PROJECT_ROLES; naming managers is for admins
IDLE_POLICIES = (("suspend", "suspend idle instances"), ("none", "leave them running"))
# ReserveBlockRequest's prefixlen, smallest first: (value, text)
BLOCK_SIZES = tuple((str(p), f"/{p}: {1 << (32 - p)} addresses") for p in range(28, 21, -1))


# ----- pages --------------------------------------------------------------------------------------

def _my_role(actor, project_id):
    for membership in actor.get("projects", []):
        if membership.get("id") == project_id:
            return membership.get("role")
    return None


@page("/courses", title="My courses", area="teacher", nav="Courses")
def teacher_courses(rpc, actor):
    """The courses the actor manages (an admin: every course, as list_projects answers)."""
    is_admin = actor.get("role") == "admin"
    courses = []
    for project in rpc.accounts.list_projects(actor):
        role = _my_role(actor, project["id"])
        if is_admin or role == "manager":
            courses.append((project, role or "admin"))
    return render_template("courses/index.html", title="My courses", courses=courses)


def _quota_caps(member_quota):
    """The caps a member has (the resources with a limit)."""
    return [(name, limit) for name, limit in (member_quota or {}).items() if limit is not None]


def _course_page(rpc, actor, project_id, errors=None, failed=None, form=None, report=None):
    """The course page. `failed`: which form the service refused (defaults, members, import,
    remove, reserve_block, end_block, and views/network.py's), shown with `errors` and the values sent (`form`);
    `report`: an import's answer. The subnet blocks' Reserve form and End buttons are shown to
    whom the policy lets reserve and end them (the service checks again)."""
    project, members, usage, flavors, images, blocks, *network_data = gather(
        (rpc.accounts.get_project, actor, project_id),   # 404 first: not a course of theirs
        (rpc.accounts.list_members, actor, project_id),  # 403: a member, not a manager
        (rpc.accounts.get_usage, actor, project_id),
        (rpc.instances.list_flavors,),
        (rpc.storage.list_images, actor),
        (rpc.network.list_subnet_blocks, actor, project_id),
        *network.course_calls(rpc, actor, project_id))  # the Security groups and Floating IPs panels
    target = {"project_id": project_id}
    members = sorted(members, key=lambda m: (m["role"] != "manager", m["username"]))
    return form_page(
        "courses/show.html", errors, title=f"Course {project['name']}", project=project,
        members=[dict(m, caps=_quota_caps(m.get("quota"))) for m in members], usage=usage,
        flavors=[(f["id"], f"{f['name']}: {f['vcpus']} vCPU, {f['memory_mib']} MiB, {f['disk_gib']} GiB")
                 for f in flavors],
        flavor_names={f["id"]: f["name"] for f in flavors},
        images=[(i["id"], i["name"]) for i in images], image_names={i["id"]: i["name"] for i in images},
        idle_policies=IDLE_POLICIES, roles=ROLES, quota_resources=QUOTA_RESOURCES,
        blocks=blocks, block_sizes=BLOCK_SIZES,
        may_reserve_block=policy.allowed(actor, "subnet_block:create", target),
        may_end_block=policy.allowed(actor, "subnet_block:end", target),
        **network.course_panels(actor, project_id, *network_data),
        failed=failed, form=form or {}, report=report)


@page("/courses/<id:project_id>", title="Course", area="teacher")
def teacher_course(rpc, actor, project_id):
    return _course_page(rpc, actor, project_id)


def _back_to(project_id):
    return redirect(f"/courses/{project_id}", code=303)


@page("/courses/<id:project_id>/defaults", title="Change a course's defaults", area="teacher",
      methods=("POST",))
def teacher_course_defaults(rpc, actor, project_id):
    body = body_from_form(ACCOUNTS + "UpdateProjectRequest",
                          keep_empty=("default_lease_hours", "default_flavor", "default_image"))
    if "description" in request.form:  # an emptied description is "" (body_from_form leaves it out)
        body["description"] = request.form["description"]
    _project, errors = attempt(lambda: rpc.accounts.update_project(actor, project_id, body))
    if errors:
        return _course_page(rpc, actor, project_id, errors, "defaults", request.form)
    return _back_to(project_id)


def _number(value):
    """A cap as the schema's integer, or the text as typed (the service then names the field)."""
    try:
        return int(value)
    except ValueError:
        return value


@page("/courses/<id:project_id>/members", title="Add a member", area="teacher", methods=("POST",))
def teacher_course_add_member(rpc, actor, project_id):
    body = body_from_form(ACCOUNTS + "AddMemberRequest")
    caps = {name: _number(request.form.get(f"quota.{name}", "").strip()) for name in QUOTA_RESOURCES
            if request.form.get(f"quota.{name}", "").strip()}
    if caps:
        body["quota"] = caps
    _member, errors = attempt(lambda: rpc.accounts.add_member(actor, project_id, body))
    if errors:
        return _course_page(rpc, actor, project_id, errors, "members", request.form)
    return _back_to(project_id)


def _class_list():
    """The CSV text sent: the file chosen (if any), else the text area's. A file that is not
    UTF-8 is refused as the REST route refuses it (gateway/http_input.csv_body)."""
    upload = request.files.get("csv")
    if upload is not None and upload.filename:
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput("the CSV file is not UTF-8 text", {"csv": ["not UTF-8 text"]}) from None
    return request.form.get("csv", "")


@page("/courses/<id:project_id>/import", title="Import a class list", area="teacher", methods=("POST",))
def teacher_course_import(rpc, actor, project_id):
    """The import's report is this answer (the course page with it), not a redirect: nothing
    keeps it. Sending the same file again imports nobody twice (every row is then `existing`)."""
    try:
        text = _class_list()
    except InvalidInput as exc:
        return _course_page(rpc, actor, project_id, FormErrors(exc), "import")
    report, errors = attempt(lambda: rpc.accounts.import_users(actor, {"csv": text, "project": project_id}))
    if errors:
        return _course_page(rpc, actor, project_id, errors, "import", {"csv": text})
    return _course_page(rpc, actor, project_id, report=report)


@page("/courses/<id:project_id>/members/<id:user_id>/remove", title="Remove a member", area="teacher",
      methods=("POST",))
def teacher_course_remove_member(rpc, actor, project_id, user_id):
    _removed, errors = attempt(lambda: rpc.accounts.remove_member(actor, project_id, user_id))
    if errors:
        return _course_page(rpc, actor, project_id, errors, "remove")
    return _back_to(project_id)


@page("/courses/<id:project_id>/subnet-blocks", title="Reserve a subnet block", area="teacher",
      methods=("POST",))
def teacher_course_reserve_block(rpc, actor, project_id):
    """A block of a subnet (the default one when no name is given) for the course's new guests.
    The end date is a datetime-local input's value, taken as UTC. The service's refusals land next
    to the fields; a block of that subnet the course has already (409, naming `project`) is said
    next to the subnet's name, and no free block of that size (503) next to the size."""
    body = body_from_form(NETWORK + "ReserveBlockRequest")
    _block, errors = attempt(lambda: rpc.network.reserve_subnet_block(actor, project_id, body),
                             also=(CapacityExhausted,))
    if errors:
        if errors.get("project") and not errors.get("subnet"):
            errors.fields["subnet"] = errors.fields["project"]
        return _course_page(rpc, actor, project_id, errors, "reserve_block", request.form)
    return _back_to(project_id)


@page("/courses/<id:project_id>/subnet-blocks/<id:block_id>/end", title="End a subnet block", area="teacher",
      methods=("POST",))
def teacher_course_end_block(rpc, actor, project_id, block_id):
    """The block ends: its addresses go back to the subnet once the course's guests hold none of
    them (until then it stays listed, with its end). The service checks the block's own course."""
    _block, errors = attempt(lambda: rpc.network.end_subnet_block(actor, block_id))
    if errors:
        return _course_page(rpc, actor, project_id, errors, "end_block", {"block": block_id})
    return _back_to(project_id)


@page("/courses/<id:project_id>/instances", title="Course instances", area="teacher")
def teacher_course_instances(rpc, actor, project_id):
    project, instances = gather((rpc.accounts.get_project, actor, project_id),
                                (rpc.instances.list_instances, actor, False, project_id))
    return render_template("courses/instances.html", title=f"Instances of {project['name']}", project=project,
                           instances=instances)


@page("/courses/<id:project_id>/instances/rows", title="Course instance rows", area="teacher", fragment=True)
def teacher_course_instance_rows(rpc, actor, project_id):
    """The course instances table's body, polled by htmx."""
    return render_template("courses/instance_rows.html", project_id=project_id,
                           instances=rpc.instances.list_instances(actor, False, project_id))
