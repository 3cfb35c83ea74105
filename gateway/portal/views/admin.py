"""Admins: sign-ups, users, courses and quotas, images, hosts, subnets, the audit log, every instance.

Like every portal page these only call the services and show what they answer; the services
decide who may. Each GET page shows at least one piece of data only an administrator may read
(the user list, the hosts, the audit log), so anyone else gets the service's refusal page.

Several small forms share a page (an approve form per sign-up, a quota form per course): their
fields keep the API's names, and `failed` names the one form the service refused, so its errors
show next to that form's fields only (templates/admin/fields.html).
"""
from flask import redirect, render_template, request

from common.errors import InvalidInput
from gateway.portal.forms import FormErrors, attempt, body_from_form, form_page
from gateway.portal.gather import gather, optional
from gateway.portal.registry import page
from gateway.routes import resolve

ACCOUNTS = "services.accounts.schemas:"
STORAGE = "services.storage.schemas:"
NETWORK = "services.network.schemas:"
QUOTA_LABELS = {"instances": "Instances", "vcpus": "vCPUs", "memory_mib": "Memory (MiB)",
                "volume_gib": "Volumes (GiB)", "floating_ips": "Floating IPs", "volumes": "Volumes"}
REGISTRATION_PATHS = ("/api/v1/images", "/admin/images")  # POSTs that register an image
REGISTRATIONS_LOOKED_AT = 500  # newest audit records searched for them


def _back(path):
    return redirect(path, code=303)


def _choices(items, key="name"):
    return [(item["id"], item[key]) for item in items]


def _quota_fields():
    return [(name, QUOTA_LABELS.get(name, name)) for name in resolve(ACCOUNTS + "QuotaSchema")().fields]


# ----- sign-ups -------------------------------------------------------------------------------

def _signups_page(rpc, actor, errors=None, failed=None, form=None):
    pending, courses = gather((rpc.accounts.list_users, actor, {"status": "pending"}),
                              (rpc.accounts.list_projects, actor))
    return form_page("admin/signups.html", errors, title="Sign-ups waiting for approval", users=pending,
                     courses=_choices(courses), failed=failed, form=form or {})


@page("/admin/signups", title="Sign-ups", area="admin", nav="Sign-ups")
def admin_signups(rpc, actor):
    return _signups_page(rpc, actor)


@page("/admin/users/<id:user_id>/approve", title="Approve a sign-up", area="admin", methods=("POST",))
def admin_approve_user(rpc, actor, user_id):
    body = body_from_form(ACCOUNTS + "ApproveUserRequest")
    _user, errors = attempt(lambda: rpc.accounts.approve_user(actor, user_id, body))
    if errors:
        return _signups_page(rpc, actor, errors, f"approve-{user_id}", request.form)
    return _back("/admin/signups")


@page("/admin/users/<id:user_id>/reject", title="Reject a sign-up", area="admin", methods=("POST",))
def admin_reject_user(rpc, actor, user_id):
    body = body_from_form(ACCOUNTS + "RejectUserRequest")
    _user, errors = attempt(lambda: rpc.accounts.reject_user(actor, user_id, body))
    if errors:
        return _signups_page(rpc, actor, errors, f"reject-{user_id}", request.form)
    return _back("/admin/signups")


# ----- users ----------------------------------------------------------------------------------

def _users_page(rpc, actor, errors=None, failed=None, form=None, created=None, report=None):
    users, courses = gather((rpc.accounts.list_users, actor, {}), (rpc.accounts.list_projects, actor))
    return form_page("admin/users.html", errors, title="Users", users=users, courses=_choices(courses),
                     heirs=[(u["id"], u["username"]) for u in users if u["status"] == "active"],
                     failed=failed, form=form or {}, created=created, report=report)


@page("/admin/users", title="Users", area="admin", methods=("GET", "POST"), nav="Users")
def admin_users(rpc, actor):
    """The users; a POST creates one (the answer's one-time password link is shown here, once)."""
    if request.method == "GET":
        return _users_page(rpc, actor)
    body = body_from_form(ACCOUNTS + "CreateUserRequest")
    created, errors = attempt(lambda: rpc.accounts.create_user(actor, body))
    if errors:
        return _users_page(rpc, actor, errors, "create", request.form)
    return _users_page(rpc, actor, created=created)


def _csv_from_upload(body):
    """The class list: an uploaded file wins over the text area (as the API: UTF-8, BOM allowed)."""
    upload = request.files.get("csv_file")
    if upload is None or not upload.filename:
        return body
    try:
        return dict(body, csv=upload.read().decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InvalidInput("the CSV file is not UTF-8 text", {"csv": ["not UTF-8 text"]}) from None


@page("/admin/users/import", title="Import users", area="admin", methods=("POST",))
def admin_import_users(rpc, actor):
    try:
        body = _csv_from_upload(body_from_form(ACCOUNTS + "ImportUsersRequest"))
    except InvalidInput as exc:
        return _users_page(rpc, actor, FormErrors(exc), "import", request.form)
    report, errors = attempt(lambda: rpc.accounts.import_users(actor, body))
    if errors:
        return _users_page(rpc, actor, errors, "import", request.form)
    return _users_page(rpc, actor, report=report)


@page("/admin/users/<id:user_id>/suspend", title="Suspend a user", area="admin", methods=("POST",))
def admin_suspend_user(rpc, actor, user_id):
    body = body_from_form(ACCOUNTS + "SuspendUserRequest")
    _user, errors = attempt(lambda: rpc.accounts.suspend_user(actor, user_id, body))
    if errors:
        return _users_page(rpc, actor, errors, f"suspend-{user_id}", request.form)
    return _back("/admin/users")


@page("/admin/users/<id:user_id>/enable", title="Enable a user", area="admin", methods=("POST",))
def admin_enable_user(rpc, actor, user_id):
    _user, errors = attempt(lambda: rpc.accounts.enable_user(actor, user_id))
    if errors:
        return _users_page(rpc, actor, errors, f"enable-{user_id}")
    return _back("/admin/users")


@page("/admin/users/<id:user_id>/delete", title="Delete a user", area="admin", methods=("POST",))
def admin_delete_user(rpc, actor, user_id):
    body = body_from_form(ACCOUNTS + "DeleteUserRequest")
    _user, errors = attempt(lambda: rpc.accounts.delete_user(actor, user_id, body))
    if errors:
        return _users_page(rpc, actor, errors, f"delete-{user_id}", request.form)
    return _back("/admin/users")


# ----- courses and quotas ---------------------------------------------------------------------

def _courses_page(rpc, actor, errors=None, failed=None, form=None):
    people, courses = gather((rpc.accounts.list_users, actor, {"status": "active"}),  # who may manage
                             (rpc.accounts.list_projects, actor))
    return form_page("admin/courses.html", errors, title="All courses", courses=courses,
                     people=[(u["id"], f"{u['username']} ({u['full_name']})" if u.get("full_name")
                              else u["username"]) for u in people],
                     quota_fields=_quota_fields(), failed=failed, form=form or {})


@page("/admin/courses", title="All courses", area="admin", methods=("GET", "POST"), nav="All courses")
def admin_courses(rpc, actor):
    if request.method == "GET":
        return _courses_page(rpc, actor)
    form = {name: request.form.get(name) for name in request.form}
    form["managers"] = ",".join(request.form.getlist("managers"))  # a multi-select: one value each
    body = body_from_form(ACCOUNTS + "CreateProjectRequest", form)
    _course, errors = attempt(lambda: rpc.accounts.create_project(actor, body))
    if errors:
        return _courses_page(rpc, actor, errors, "course", dict(form, managers=request.form.getlist("managers")))
    return _back("/admin/courses")


@page("/admin/courses/<id:project_id>/quota", title="Set a course's quota", area="admin", methods=("POST",))
def admin_set_quota(rpc, actor, project_id):
    schema = resolve(ACCOUNTS + "QuotaSchema")
    body = body_from_form(schema, request.form, keep_empty=tuple(schema().fields))  # empty: unlimited
    _quota, errors = attempt(lambda: rpc.accounts.set_quota(actor, project_id, body))
    if errors:
        return _courses_page(rpc, actor, errors, f"quota-{project_id}", request.form)
    return _back("/admin/courses")


# ----- images ---------------------------------------------------------------------------------

def _images_page(rpc, actor, errors=None, form=None):
    # The registrations (who, when, how it ended) come from the audit log, which only admins read.
    audited, images = gather((rpc.accounts.list_audit, actor, {"limit": REGISTRATIONS_LOOKED_AT}),
                             (rpc.storage.list_images, actor))
    return form_page("admin/images.html", errors, title="Images", images=images,
                     registrations=[r for r in audited if r["method"] == "POST" and r["path"] in REGISTRATION_PATHS],
                     looked_at=REGISTRATIONS_LOOKED_AT, form=form or {})


@page("/admin/images", title="Images", area="admin", methods=("GET", "POST"), nav="Images")
def admin_images(rpc, actor):
    if request.method == "GET":
        return _images_page(rpc, actor)
    body = body_from_form(STORAGE + "RegisterImageRequest")
    _image, errors = attempt(lambda: rpc.storage.register_image(actor, body))
    if errors:
        return _images_page(rpc, actor, errors, request.form)
    return _back("/admin/images")


# ----- hosts ----------------------------------------------------------------------------------

def _hosts_page(rpc, actor, errors=None, drained=None):
    """The hosts; `drained`: a drain's answer, with the names of the instances it names."""
    if drained is None:
        return form_page("admin/hosts.html", errors, title="Hosts", hosts=rpc.instances.list_hosts(actor))
    hosts, instances = gather((rpc.instances.list_hosts, actor), (rpc.instances.list_instances, actor, False, None))
    return form_page("admin/hosts.html", errors, title="Hosts", hosts=hosts, drained=drained,
                     names={i["id"]: i["name"] for i in instances})


@page("/admin/hosts", title="Hosts", area="admin", nav="Hosts")
def admin_hosts(rpc, actor):
    return _hosts_page(rpc, actor)


def _host_page(rpc, actor, name, errors=None, drained=None):
    """One host and what runs there; `drained` as on the list (the instances it names may have moved
    off this host already: their names come from every instance)."""
    calls = [(rpc.instances.get_host, actor, name), (rpc.storage.list_pools, actor, name),
             optional(rpc.metrics.get_graph_availability, actor, {"host": name})]
    if drained is None:
        host, pools, graphs = gather(*calls)
        return form_page("admin/host.html", errors, title=f"Host {name}", host=host, pool=(pools or [None])[0],
                         graphs_available=graphs and graphs["available"])
    host, pools, graphs, instances = gather(*calls, (rpc.instances.list_instances, actor, False, None))
    return form_page("admin/host.html", errors, title=f"Host {name}", host=host, drained=drained,
                     pool=(pools or [None])[0], names={i["id"]: i["name"] for i in instances},
                     graphs_available=graphs and graphs["available"])


@page("/admin/hosts/<host_name:name>", title="Host", area="admin")
def admin_host(rpc, actor, name):
    return _host_page(rpc, actor, name)


@page("/admin/hosts/<host_name:name>/<any(disable,enable):action>", title="Host action", area="admin",
      methods=("POST",))
def admin_host_state(rpc, actor, name, action):
    method = getattr(rpc.instances, f"{action}_host")
    _done, errors = attempt(lambda: method(actor, name))
    to_host = request.form.get("back") == "host"  # sent from the host's own page: back there
    if errors and to_host and errors.status != 404:
        return _host_page(rpc, actor, name, errors)
    if errors:
        return _hosts_page(rpc, actor, errors)
    return _back(f"/admin/hosts/{name}" if to_host else "/admin/hosts")


@page("/admin/hosts/<host_name:name>/drain", title="Drain a host", area="admin", methods=("POST",))
def admin_drain_host(rpc, actor, name):
    """The host takes nothing new and its running instances migrate away; the page it was sent
    from (the list, or the host's own page: `back`) shows the answer: the migrations started and
    the instances refused, with why."""
    drained, errors = attempt(lambda: rpc.instances.drain_host(actor, name))
    if request.form.get("back") == "host" and errors.status != 404:
        return _host_page(rpc, actor, name, errors, drained)
    return _hosts_page(rpc, actor, errors, drained)


# ----- subnets --------------------------------------------------------------------------------

def _subnets_page(rpc, actor, errors=None, form=None):
    return form_page("admin/subnets.html", errors, title="Subnets", subnets=rpc.network.list_subnets(actor),
                     form=form or {})


@page("/admin/subnets", title="Subnets", area="admin", methods=("GET", "POST"), nav="Subnets")
def admin_subnets(rpc, actor):
    """The subnets; a POST creates one (DNS servers and reserved addresses: comma- or line-separated,
    sent as the API's lists)."""
    if request.method == "GET":
        return _subnets_page(rpc, actor)
    body = body_from_form(NETWORK + "CreateSubnetRequest")
    _subnet, errors = attempt(lambda: rpc.network.create_subnet(actor, body))
    if errors:
        return _subnets_page(rpc, actor, errors, request.form)
    return _back("/admin/subnets")


def _subnet_page(rpc, actor, subnet_id, errors=None, failed=None, form=None):
    """One subnet; `failed`: the form the service refused (reserve, release-IP, delete)."""
    subnet = rpc.network.get_subnet(actor, subnet_id)
    return form_page("admin/subnet.html", errors, title=f"Subnet {subnet['name']}", subnet=subnet,
                     failed=failed, form=form or {})


@page("/admin/subnets/<id:subnet_id>", title="Subnet", area="admin")
def admin_subnet(rpc, actor, subnet_id):
    return _subnet_page(rpc, actor, subnet_id)


@page("/admin/subnets/<id:subnet_id>/reserve", title="Reserve an address", area="admin", methods=("POST",))
def admin_reserve_address(rpc, actor, subnet_id):
    body = body_from_form(NETWORK + "ReserveAddressRequest")
    _subnet, errors = attempt(lambda: rpc.network.reserve_address(actor, subnet_id, body))
    if errors:
        return _subnet_page(rpc, actor, subnet_id, errors, "reserve", request.form)
    return _back(f"/admin/subnets/{subnet_id}")


@page("/admin/subnets/<id:subnet_id>/reserved/<ipv4:ip>/release", title="Release a reserved address",
      area="admin", methods=("POST",))
def admin_release_address(rpc, actor, subnet_id, ip):
    _subnet, errors = attempt(lambda: rpc.network.unreserve_address(actor, subnet_id, ip))
    if errors:
        return _subnet_page(rpc, actor, subnet_id, errors, f"release-{ip}")
    return _back(f"/admin/subnets/{subnet_id}")


@page("/admin/subnets/<id:subnet_id>/delete", title="Delete a subnet", area="admin", methods=("POST",))
def admin_delete_subnet(rpc, actor, subnet_id):
    """Refused (409) while guests hold addresses of it, or for the default subnet: shown on its page."""
    _subnet, errors = attempt(lambda: rpc.network.delete_subnet(actor, subnet_id))
    if errors:
        return _subnet_page(rpc, actor, subnet_id, errors, "delete")
    return _back("/admin/subnets")


@page("/admin/subnets/<id:subnet_id>/macs", title="MAC list", area="admin")
def admin_subnet_macs(rpc, actor, subnet_id):
    """Every address guests of the subnet can get with its MAC (Orca's pre-approval list); a
    `random` subnet has none: the service's refusal (409) is the page's message."""
    subnet = rpc.network.get_subnet(actor, subnet_id)
    macs, errors = attempt(lambda: rpc.network.list_subnet_macs(actor, subnet_id))
    return form_page("admin/subnet_macs.html", errors, title=f"MAC list of {subnet['name']}", subnet=subnet,
                     macs=macs or [])


# ----- audit log ------------------------------------------------------------------------------

@page("/admin/audit", title="Audit log", area="admin", nav="Audit")
def admin_audit(rpc, actor):
    """Newest first, filtered by what the audit request offers (a GET form: the filter is in the URL)."""
    people, courses = gather((rpc.accounts.list_users, actor, {}), (rpc.accounts.list_projects, actor))
    query = body_from_form(ACCOUNTS + "ListAuditRequest", request.args)
    records, errors = attempt(lambda: rpc.accounts.list_audit(actor, query))
    return form_page("admin/audit.html", errors, title="Audit log", records=records or [],
                     people=[(u["id"], u["username"]) for u in people], courses=_choices(courses),
                     form=request.args)


# ----- every instance (live) ------------------------------------------------------------------

def _all_instances(rpc, actor):
    users, projects, instances = gather((rpc.accounts.list_users, actor, {}), (rpc.accounts.list_projects, actor),
                                        (rpc.instances.list_instances, actor, False, None))
    return {"instances": instances, "owners": {u["id"]: u["username"] for u in users},
            "courses": {p["id"]: p["name"] for p in projects}}


@page("/admin/instances", title="All instances", area="admin", nav="All instances")
def admin_instances(rpc, actor):
    return render_template("admin/instances.html", title="All instances", **_all_instances(rpc, actor))


@page("/admin/fragments/instances", title="All instance rows", area="admin", fragment=True)
def admin_instance_rows(rpc, actor):
    """The table body of every instance, polled by htmx: states change without a reload."""
    return render_template("admin/instance_rows.html", **_all_instances(rpc, actor))
