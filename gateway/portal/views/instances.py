"""A user's instances: the dashboard (live), creating one, its page (live state, console, actions,
SSH command; for admins a live migration), and usage against the course quota."""
from flask import redirect, render_template, request

from common import policy
from common.errors import CapacityExhausted
from gateway.portal.forms import attempt, body_from_form, form_page
from gateway.portal.gather import gather, optional
from gateway.portal.registry import page
from gateway.portal.views import network

INSTANCES = "services.instances.schemas:"


def _by_id(items):
    return {item["id"]: item for item in items}


def _my_instances(rpc, actor):
    instances, projects = gather((rpc.instances.list_instances, actor, False, None),
                                 (rpc.accounts.list_projects, actor))
    return {"instances": instances, "courses": {p["id"]: p["name"] for p in projects}}


@page("/", title="My instances", area="student", nav="Instances")
def dashboard(rpc, actor):
    return render_template("instances/dashboard.html", title="My instances", **_my_instances(rpc, actor))


@page("/fragments/instances", title="Instance rows", area="student", fragment=True)
def instance_rows(rpc, actor):
    """The dashboard's table body, polled by htmx: states change without a reload."""
    return render_template("instances/rows.html", **_my_instances(rpc, actor))


def _create_form(rpc, actor, errors, form):
    projects, images, flavors, keys = gather(
        (rpc.accounts.list_projects, actor), (rpc.storage.list_images, actor), (rpc.instances.list_flavors,),
        (rpc.accounts.list_keys, actor))
    listed = {str(p["id"]) for p in projects}
    project = form.get("project") or (str(projects[0]["id"]) if projects else None)
    # A course the form named but the actor is not in: the create's refusal is the answer, no panel.
    usage = rpc.accounts.get_usage(actor, int(project)) if project in listed else None
    return form_page(
        "instances/new.html", errors, title="New instance", form=form, usage=usage, has_keys=bool(keys),
        projects=[(p["id"], p["name"]) for p in projects],
        # Only what can boot (not an upload under way or a failed one); later versions by their number.
        images=[(i["id"], i["name"] if i["version"] == 1 else f"{i['name']} (version {i['version']})")
                for i in images if i["state"] == "active"],
        flavors=[(f["id"], f"{f['name']}: {f['vcpus']} vCPU, {f['memory_mib']} MiB, {f['disk_gib']} GiB")
                 for f in flavors],
        keys=[(k["id"], k["name"]) for k in keys])


@page("/instances/new", title="New instance", area="student", methods=("GET", "POST"), nav="New instance")
def new_instance(rpc, actor):
    if request.method == "GET":
        return _create_form(rpc, actor, None, request.args)
    body = body_from_form(INSTANCES + "CreateInstanceRequest")
    created, errors = attempt(lambda: rpc.instances.create_instance(actor, body))
    if errors:
        return _create_form(rpc, actor, errors, request.form)
    return redirect(f"/instances/{created['id']}", code=303)


@page("/fragments/usage", title="Quota left", area="student", fragment=True)
def usage_fragment(rpc, actor):
    """The create form's quota panel for the course picked (htmx, on change)."""
    project = request.args.get("project", type=int)
    usage = rpc.accounts.get_usage(actor, project) if project else None
    return render_template("instances/usage_panel.html", usage=usage)


@page("/usage", title="My usage", area="student", nav="Usage")
def usage(rpc, actor):
    projects = rpc.accounts.list_projects(actor)
    usages = gather(*[(rpc.accounts.get_usage, actor, p["id"]) for p in projects])
    return render_template("instances/usage.html", title="My usage", usages=list(zip(projects, usages)))


def _instance_page(rpc, actor, instance_id, errors=None, form=None, failed=None):
    """The instance page; `failed`: the form the service refused (resources, resize, migrate,
    volumes, security-groups, floating-ip),
    shown open with `errors` next to its fields and the values sent (`form`)."""
    may_list_hosts = policy.allowed(actor, "host:list")  # admins: the migrate form's destinations
    calls = [(rpc.instances.get_instance, actor, instance_id), (rpc.instances.list_flavors,),
             (rpc.instances.list_instance_actions, actor, instance_id), (rpc.accounts.list_projects, actor),
             (rpc.storage.list_instance_volumes, instance_id), (rpc.storage.list_data_volumes, actor, {}),
             optional(rpc.metrics.get_graph_availability, actor, {"instance_id": instance_id})]
    calls += network.instance_calls(rpc, actor, instance_id)
    if may_list_hosts:
        calls.append((rpc.instances.list_hosts, actor))
    instance, flavors, actions, projects, attached, volumes, graphs, *network_data = gather(*calls)
    network_data, hosts = network_data[:2], network_data[2:]
    return form_page("instances/show.html", errors, title=f"Instance {instance['name']}", instance=instance,
                     flavor=_by_id(flavors).get(instance["flavor"]), actions=actions,
                     course=_by_id(projects).get(instance["project"]), form=form, failed=failed,
                     flavors=[(f["id"], f"{f['name']}: {f['vcpus']} vCPU, {f['memory_mib']} MiB (up to "
                                        f"{f['max_memory_mib']}), {f['disk_gib']} GiB") for f in flavors],
                     destinations=_destinations(actor, instance, hosts[0]) if hosts else None,
                     attached=attached, **_volume_choices(instance, volumes), graphs_available=graphs and graphs["available"],
                     **network.instance_panels(rpc, actor, instance, *network_data))


def _volume_choices(instance, volumes):
    """The Volumes panel's lists: the course's volumes not attached (to delete), and those of them
    that can be attached here, (id, text) (available, on the instance's host)."""
    spare = [v for v in volumes if v["state"] in ("available", "error") and v["project"] == instance["project"]]
    return {"spare_volumes": spare,
            "attachable": [(str(v["id"]), f"{v['name']} ({v['size_gib']} GiB)") for v in spare
                           if v["state"] == "available" and v["host"] == instance["host"]]}


def _number(value):
    return int(value) if float(value).is_integer() else round(value, 1)


def _destinations(actor, instance, hosts):
    """The migrate form's hosts, (name, text): those taking instances (up and enabled) other than
    the instance's own; None when the policy does not let the actor migrate it (no form). The
    service checks the choice again (room, anti-affinity) and names `host` when it refuses."""
    if not policy.allowed(actor, "instance:migrate", {"user_id": instance["user_id"],
                                                      "project_id": instance["project"]}):
        return None
    return [(h["name"], f"{h['name']}: {h['allocated_memory_mib']} of {_number(h['capacity_memory_mib'])} MiB, "
                        f"{h['allocated_vcpus']} of {_number(h['capacity_vcpus'])} vCPUs allocated, "
                        f"{h['instances']} instances")
            for h in hosts if h["up"] and h["state"] == "enabled" and h["name"] != instance["host"]]


@page("/instances/<uuid:instance_id>", title="Instance", area="student")
def show_instance(rpc, actor, instance_id):
    return _instance_page(rpc, actor, instance_id)


@page("/instances/<uuid:instance_id>/live", title="Instance state", area="student", fragment=True)
def instance_live(rpc, actor, instance_id):
    """The instance page's state, address, SSH command and action log, polled by htmx."""
    instance, actions, projects = gather((rpc.instances.get_instance, actor, instance_id),
                                         (rpc.instances.list_instance_actions, actor, instance_id),
                                         (rpc.accounts.list_projects, actor))
    return render_template("instances/live.html", instance=instance, actions=actions,
                           course=_by_id(projects).get(instance["project"]))


@page("/instances/<uuid:instance_id>/console", title="Console output", area="student", fragment=True)
def instance_console(rpc, actor, instance_id):
    return render_template("instances/console.html", console=rpc.instances.get_console(actor, instance_id))


@page("/instances/<uuid:instance_id>/<any(stop,start,reboot):action>", title="Instance action",
      area="student", methods=("POST",))
def power_instance(rpc, actor, instance_id, action):
    method = getattr(rpc.instances, f"{action}_instance")
    _done, errors = attempt(lambda: method(actor, instance_id))
    if errors:
        return _instance_page(rpc, actor, instance_id, errors)
    return redirect(f"/instances/{instance_id}", code=303)


def _instance_form(rpc, actor, instance_id, schema, method, failed, also=()):
    """A form of the instance page posted to `method(actor, instance_id, body)`: back to the page,
    or the page again with the service's refusal next to the fields of the form `failed`."""
    body = body_from_form(INSTANCES + schema)
    _done, errors = attempt(lambda: method(actor, instance_id, body), also)
    if errors:
        return _instance_page(rpc, actor, instance_id, errors, request.form, failed)
    return redirect(f"/instances/{instance_id}", code=303)


@page("/instances/<uuid:instance_id>/resources", title="Change resources", area="student", methods=("POST",))
def set_resources(rpc, actor, instance_id):
    return _instance_form(rpc, actor, instance_id, "SetResourcesRequest", rpc.instances.set_instance_resources,
                          "resources")


@page("/instances/<uuid:instance_id>/resize", title="Resize", area="student", methods=("POST",))
def resize_instance(rpc, actor, instance_id):
    return _instance_form(rpc, actor, instance_id, "ResizeRequest", rpc.instances.resize_instance, "resize")


@page("/instances/<uuid:instance_id>/migrate", title="Migrate", area="admin", methods=("POST",))
def migrate_instance(rpc, actor, instance_id):
    """Admins: a migration to the host chosen, or (empty) the scheduler's choice; the page then
    polls the instance `migrating` to `migrating_to`. No host with room: the service's 503, on the
    form."""
    return _instance_form(rpc, actor, instance_id, "MigrateRequest", rpc.instances.migrate_instance, "migrate",
                          also=(CapacityExhausted,))


@page("/instances/<uuid:instance_id>/delete", title="Delete instance", area="student", methods=("POST",))
def delete_instance(rpc, actor, instance_id):
    _done, errors = attempt(lambda: rpc.instances.delete_instance(actor, instance_id))
    if errors:
        return _instance_page(rpc, actor, instance_id, errors)
    return redirect("/", code=303)


