"""Floating IPs and security groups in the portal: a course page's Security groups and Floating
IPs panels, an instance page's groups and floating IP, the admins' floating pools page.

The forms call the network service's RPCs (gateway/api/floating_ips.py lists them) and show what
it answers; the policy only decides which forms and buttons are shown (the service checks again).
A refused form shows its page again with the service's errors next to that form's fields
(`failed` is the form's id, templates/admin/fields.html). The course and instance pages gather
these panels' data with their own (`course_calls`/`course_panels`, `instance_calls`/
`instance_panels`); the pages themselves are imported when a form is refused, since those
modules import this one.
"""
from flask import redirect, request

from common import policy
from common.errors import CapacityExhausted, InvalidInput
from gateway.portal.forms import attempt, body_from_form, form_page
from gateway.portal.gather import gather
from gateway.portal.registry import page

NETWORK = "services.network.schemas:"
DIRECTIONS = (("ingress", "ingress: traffic in"), ("egress", "egress: traffic out"))
PROTOCOLS = (("tcp", "tcp"), ("udp", "udp"), ("icmp", "icmp"), ("any", "any protocol"))


# ----- what the course and instance pages show ----------------------------------------------------

def ports(rule):
    if rule["protocol"] not in ("tcp", "udp") or rule["port_min"] is None:
        return "all"
    if rule["port_max"] in (None, rule["port_min"]):
        return str(rule["port_min"])
    return f"{rule['port_min']}-{rule['port_max']}"


def peer(rule):
    return f"group {rule['remote_group']}" if rule.get("remote_group") else (rule.get("cidr") or "anywhere")


def _with_rules(groups):
    """The groups, each rule with its ports and peer in words (`rule_rows`)."""
    return [dict(g, rule_rows=[dict(r, ports=ports(r), peer=peer(r)) for r in g["rules"]]) for g in groups]


def course_calls(rpc, actor, project_id):
    """The course page's RPCs for the two panels (sent with the page's others)."""
    return [(rpc.network.list_security_groups, actor, project_id), (rpc.network.list_floating_ips, actor),
            (rpc.network.list_floating_pools, actor), (rpc.instances.list_instances, actor, False, project_id)]


def course_panels(actor, project_id, groups, floating_ips, pools, instances):
    """The panels' context from course_calls' answers."""
    target = {"project_id": project_id}
    names = {i["id"]: i["name"] for i in instances}
    mine = [dict(f, instance_name=names.get(f["instance"], f["instance"]),
                 may_associate=policy.allowed(actor, "floating_ip:associate", dict(target, user_id=f["user_id"])),
                 may_release=policy.allowed(actor, "floating_ip:delete", dict(target, user_id=f["user_id"])))
            for f in floating_ips if f["project"] == project_id]
    taken = {f["instance"] for f in mine if f["instance"]}
    return {"groups": _with_rules(groups),
            "group_choices": [(str(g["id"]), g["name"]) for g in groups],
            "group_names": [(g["name"], g["name"]) for g in groups],
            "directions": DIRECTIONS, "protocols": PROTOCOLS,
            "may_create_group": policy.allowed(actor, "security_group:create", target),
            "may_update_group": policy.allowed(actor, "security_group:update", target),
            "may_delete_group": policy.allowed(actor, "security_group:delete", target),
            "floating_ips": mine, "may_allocate_ip": policy.allowed(actor, "floating_ip:create", target),
            "pools": [(p["name"], f"{p['name']}: {p['cidr']}, {p['free']} free") for p in pools],
            "associable_ips": [(str(f["id"]), f["ip"]) for f in mine if f["may_associate"] and not f["instance"]],
            "associable_instances": [(i["id"], i["name"]) for i in instances
                                     if i["id"] not in taken and i["state"] not in ("deleting", "deleted", "error")]}


def instance_calls(rpc, actor, instance_id):
    return [(rpc.network.list_floating_ips, actor), (rpc.network.list_floating_pools, actor)]


def instance_panels(rpc, actor, instance, floating_ips, pools):
    """The instance page's network part: its groups, its floating IP (Disassociate) or the forms
    that give it one (the course's free floating IPs the actor may associate; a new one from a
    pool: students have no course page), and, for whom the policy lets change its groups, the
    course's groups to choose from. The groups take one more RPC, once the instance's course is
    known: the course's groups (each names its instances) for its members, else the instance's."""
    target = {"project_id": instance["project"], "user_id": instance["user_id"]}
    if policy.allowed(actor, "security_group:list", target):
        choices = rpc.network.list_security_groups(actor, instance["project"])
        groups = [g for g in choices if instance["id"] in g["instances"]]
    else:
        choices, groups = [], rpc.network.get_instance_security_groups(actor, instance["id"])
    may_bind = bool(choices) and policy.allowed(actor, "security_group:bind", target)
    choices = [g["name"] for g in choices] if may_bind else []
    course = [f for f in floating_ips if f["project"] == instance["project"]]
    mine = [f for f in course if policy.allowed(actor, "floating_ip:associate",
                                                {"project_id": instance["project"], "user_id": f["user_id"]})]
    floating_ip = next((f for f in course if f["instance"] == instance["id"]), None)
    return {"security_groups": _with_rules(groups), "may_bind_groups": may_bind, "group_options": [(n, n) for n in choices],
            "floating_ip": floating_ip, "may_disassociate_ip": floating_ip is not None and floating_ip in mine,
            "free_floating_ips": [(str(f["id"]), f"{f['ip']} ({f['pool']})") for f in mine if not f["instance"]],
            "may_new_floating_ip": policy.allowed(actor, "floating_ip:create", {"project_id": instance["project"]}),
            "ip_pools": [(p["name"], f"{p['name']}: {p['cidr']}, {p['free']} free") for p in pools]}


# ----- the course page's forms --------------------------------------------------------------------

def _on_course(rpc, actor, project_id, call, failed, also=()):
    """Run a course panel's form: back to the course page, or the page again with the refusal."""
    _done, errors = attempt(call, also=also)
    if errors:
        from gateway.portal.views.courses import _course_page  # (courses imports this module)
        return _course_page(rpc, actor, project_id, errors, failed, request.form)
    return redirect(f"/courses/{project_id}", code=303)


def _chosen(name, what):
    """A select's id (the form's `name`): an integer, or the refusal naming the field."""
    value = request.form.get(name, "").strip()
    if not value.isdigit():
        raise InvalidInput(f"choose {what}", {name: [f"choose {what}"]})
    return int(value)


@page("/courses/<id:project_id>/security-groups", title="Create a security group", area="teacher",
      methods=("POST",))
def network_create_group(rpc, actor, project_id):
    body = dict(body_from_form(NETWORK + "CreateSecurityGroupRequest"), project=project_id)
    return _on_course(rpc, actor, project_id, lambda: rpc.network.create_security_group(actor, body),
                      "create-group")


@page("/courses/<id:project_id>/security-groups/rules", title="Add a security group rule", area="teacher",
      methods=("POST",))
def network_add_rule(rpc, actor, project_id):
    """The form's `group` is the group's id; a peer is a CIDR or another group of the course."""
    body = body_from_form(NETWORK + "SecurityGroupRuleRequest")
    return _on_course(rpc, actor, project_id,
                      lambda: rpc.network.add_security_group_rule(actor, _chosen("group", "a group"), body), "add-rule")


@page("/courses/<id:project_id>/security-groups/<id:group_id>/rules/<id:rule_id>/remove",
      title="Remove a security group rule", area="teacher", methods=("POST",))
def network_remove_rule(rpc, actor, project_id, group_id, rule_id):
    return _on_course(rpc, actor, project_id,
                      lambda: rpc.network.remove_security_group_rule(actor, group_id, rule_id), "groups")


@page("/courses/<id:project_id>/security-groups/<id:group_id>/delete", title="Delete a security group",
      area="teacher", methods=("POST",))
def network_delete_group(rpc, actor, project_id, group_id):
    return _on_course(rpc, actor, project_id, lambda: rpc.network.delete_security_group(actor, group_id), "groups")


@page("/courses/<id:project_id>/floating-ips", title="Allocate a floating IP", area="teacher", methods=("POST",))
def network_allocate_ip(rpc, actor, project_id):
    """No free address in the pool (503, naming `pool`) is said next to the pool too."""
    body = dict(body_from_form(NETWORK + "AllocateFloatingIpRequest"), project=project_id)
    return _on_course(rpc, actor, project_id, lambda: rpc.network.allocate_floating_ip(actor, body),
                      "allocate-ip", also=(CapacityExhausted,))


@page("/courses/<id:project_id>/floating-ips/associate", title="Associate a floating IP", area="teacher",
      methods=("POST",))
def network_associate_ip(rpc, actor, project_id):
    """The form's `floating_ip` (its id) and `instance` (an instance of the course)."""
    body = body_from_form(NETWORK + "AssociateFloatingIpRequest")
    return _on_course(rpc, actor, project_id, lambda: rpc.network.associate_floating_ip(
        actor, _chosen("floating_ip", "a floating IP"), body), "associate-ip")


@page("/courses/<id:project_id>/floating-ips/<id:floating_ip_id>/disassociate", title="Disassociate a floating IP",
      area="teacher", methods=("POST",))
def network_disassociate_ip(rpc, actor, project_id, floating_ip_id):
    return _on_course(rpc, actor, project_id, lambda: rpc.network.disassociate_floating_ip(actor, floating_ip_id),
                      "floating-ips")


@page("/courses/<id:project_id>/floating-ips/<id:floating_ip_id>/release", title="Release a floating IP",
      area="teacher", methods=("POST",))
def network_release_ip(rpc, actor, project_id, floating_ip_id):
    return _on_course(rpc, actor, project_id, lambda: rpc.network.release_floating_ip(actor, floating_ip_id),
                      "floating-ips")


# ----- the instance page's form -------------------------------------------------------------------

@page("/instances/<uuid:instance_id>/security-groups", title="Change an instance's security groups",
      area="student", methods=("POST",))
def network_set_instance_groups(rpc, actor, instance_id):
    """The checked groups (`security_groups`, repeated): the instance is in exactly these, live."""
    body = {"security_groups": request.form.getlist("security_groups")}
    return _on_instance(rpc, actor, instance_id, lambda: rpc.network.set_instance_security_groups(
        actor, instance_id, body), "security-groups")


def _on_instance(rpc, actor, instance_id, call, failed="floating-ip", also=()):
    """Run an instance page's network form: back to the page, or the page again with the refusal."""
    _done, errors = attempt(call, also=also)
    if errors:
        from gateway.portal.views.instances import _instance_page  # (instances imports this module)
        return _instance_page(rpc, actor, instance_id, errors, request.form, failed)
    return redirect(f"/instances/{instance_id}", code=303)


@page("/instances/<uuid:instance_id>/floating-ip", title="Give an instance a new floating IP", area="student",
      methods=("POST",))
def network_instance_new_ip(rpc, actor, instance_id):
    """A floating IP of the instance's course from the form's pool (empty: the first), associated
    at once. Allocated, it stays even when the association is refused: the page offers it again."""
    def allocate_and_associate():
        instance = rpc.instances.get_instance(actor, instance_id)
        body = dict(body_from_form(NETWORK + "AllocateFloatingIpRequest"), project=instance["project"])
        made = rpc.network.allocate_floating_ip(actor, body)
        return rpc.network.associate_floating_ip(actor, made["id"], {"instance": instance["id"]})
    return _on_instance(rpc, actor, instance_id, allocate_and_associate, also=(CapacityExhausted,))


@page("/instances/<uuid:instance_id>/floating-ip/associate", title="Associate a floating IP with an instance",
      area="student", methods=("POST",))
def network_instance_associate_ip(rpc, actor, instance_id):
    """One of the course's free floating IPs (the form's `floating_ip`, its id) on this instance."""
    return _on_instance(rpc, actor, instance_id, lambda: rpc.network.associate_floating_ip(
        actor, _chosen("floating_ip", "a floating IP"), {"instance": str(instance_id)}))


@page("/instances/<uuid:instance_id>/floating-ip/<id:floating_ip_id>/disassociate",
      title="Take a floating IP off an instance", area="student", methods=("POST",))
def network_instance_disassociate_ip(rpc, actor, instance_id, floating_ip_id):
    return _on_instance(rpc, actor, instance_id, lambda: rpc.network.disassociate_floating_ip(actor, floating_ip_id))


# ----- admins: floating pools ---------------------------------------------------------------------

def _pools_page(rpc, actor, errors=None, failed=None, form=None):
    """The pools, the floating IPs allocated (all of them for an admin: the service filters) and
    the guests' subnets, which a new pool must not overlap: the admins' (anyone else is refused
    the page by list_subnets, as on every admin page)."""
    subnets, pools, floating_ips = gather((rpc.network.list_subnets, actor), (rpc.network.list_floating_pools, actor),
                                          (rpc.network.list_floating_ips, actor))
    return form_page("network/pools.html", errors, title="Floating pools", pools=pools, floating_ips=floating_ips,
                     subnets=subnets,
                     may_create=policy.allowed(actor, "floating_pool:create"),
                     may_delete=policy.allowed(actor, "floating_pool:delete"), failed=failed, form=form or {})


@page("/admin/floating-pools", title="Floating pools", area="admin", methods=("GET", "POST"), nav="Floating pools")
def network_floating_pools(rpc, actor):
    """The pools; a POST creates one (reserved addresses: comma- or line-separated)."""
    if request.method == "GET":
        return _pools_page(rpc, actor)
    body = body_from_form(NETWORK + "CreateFloatingPoolRequest")
    _pool, errors = attempt(lambda: rpc.network.create_floating_pool(actor, body))
    if errors:
        return _pools_page(rpc, actor, errors, "create-pool", request.form)
    return redirect("/admin/floating-pools", code=303)


@page("/admin/floating-pools/<id:pool_id>/delete", title="Delete a floating pool", area="admin", methods=("POST",))
def network_delete_pool(rpc, actor, pool_id):
    """Refused (409) while an address of it is allocated: shown on the pools page."""
    _pool, errors = attempt(lambda: rpc.network.delete_floating_pool(actor, pool_id))
    if errors:
        return _pools_page(rpc, actor, errors, "pools")
    return redirect("/admin/floating-pools", code=303)
