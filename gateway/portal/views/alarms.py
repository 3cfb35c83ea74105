"""Alarms in the portal: a panel on the instance page (its owner, course managers, admins) and on
the admin host page, loaded by htmx, listing the alarms with their state and last change, with a
form to add one and a button to delete one. The metrics service decides who may."""
from flask import redirect, render_template, request

from common import policy
from gateway.portal.forms import attempt, form_page
from gateway.portal.gather import gather
from gateway.portal.registry import page

NUMBERS = {"threshold": float, "period": int, "evaluation_periods": int, "datapoints_to_alarm": int}
TEXTS = ("name", "metric", "statistic", "comparison", "missing_data")
INSTANCE_METRICS = ("cpu_percent", "memory_mib", "disk_read_bps", "disk_write_bps", "net_rx_bps", "net_tx_bps")
HOST_METRICS = ("loadavg", "memory_free_kib", "memory_total_kib")


def _body(target):
    """The create request the form means; a number that does not parse goes as typed, so the
    service's 400 names its field."""
    body = dict(target)
    for name in TEXTS:
        if request.form.get(name, "").strip():
            body[name] = request.form[name].strip()
    for name, kind in NUMBERS.items():
        value = request.form.get(name, "").strip()
        if value:
            try:
                body[name] = kind(value)
            except ValueError:
                body[name] = value
    emails = [e.strip() for e in request.form.get("emails", "").split(",") if e.strip()]
    if emails:
        body["emails"] = emails
    return body


def _panel(rpc, actor, base, alarms_of, metrics, errors=None, form=None, standalone=False, project=None):
    """`project`: the instance's course (None for a host): with each alarm's creator, whether the
    actor may delete it (an instance's owner sees the alarms others put on it, without Delete)."""
    alarms = alarms_of()
    histories = gather(*[(rpc.metrics.get_alarm_history, actor, a["id"]) for a in alarms]) if alarms else []
    context = {"alarms": list(zip(alarms, [h[0] if h else None for h in histories])), "base": base,
               "metrics": metrics, "form": form or {},
               "deletable": {a["id"] for a in alarms
                             if policy.allowed(actor, "alarm:delete", {"user_id": a["user_id"], "project_id": project})}}
    if standalone:  # a refused form: the panel on a page of its own, with the service's status
        return form_page("alarms/page.html", errors, title="Alarms", **context)
    return render_template("alarms/panel.html", errors=errors, **context)


def _create(rpc, actor, base, target, alarms_of, metrics, project=None):
    _made, errors = attempt(lambda: rpc.metrics.create_alarm(actor, _body(target)))
    if errors:
        return _panel(rpc, actor, base, alarms_of, metrics, errors, request.form, standalone=True, project=project)
    return redirect(f"{base}#alarms", code=303)


@page("/instances/<uuid:instance_id>/alarms", title="Instance alarms", area="student", fragment=True)
def instance_alarms(rpc, actor, instance_id):
    instance = rpc.instances.get_instance(actor, instance_id)  # NotFound unless the actor may see it
    return _panel(rpc, actor, f"/instances/{instance_id}",
                  lambda: rpc.metrics.list_alarms(actor, instance_id), INSTANCE_METRICS, project=instance["project"])


@page("/instances/<uuid:instance_id>/alarms/new", title="New alarm", area="student", methods=("POST",))
def create_instance_alarm(rpc, actor, instance_id):
    return _create(rpc, actor, f"/instances/{instance_id}", {"instance": instance_id},
                   lambda: rpc.metrics.list_alarms(actor, instance_id), INSTANCE_METRICS)


@page("/admin/hosts/<host_name:name>/alarms", title="Host alarms", area="admin", fragment=True)
def host_alarms(rpc, actor, name):
    return _panel(rpc, actor, f"/admin/hosts/{name}", lambda: rpc.metrics.list_alarms(actor, None, name),
                  HOST_METRICS)


@page("/admin/hosts/<host_name:name>/alarms/new", title="New host alarm", area="admin", methods=("POST",))
def create_host_alarm(rpc, actor, name):
    return _create(rpc, actor, f"/admin/hosts/{name}", {"host": name},
                   lambda: rpc.metrics.list_alarms(actor, None, name), HOST_METRICS)


@page("/alarms/<id:alarm_id>/delete", title="Delete alarm", area="student", methods=("POST",))
def delete_alarm_page(rpc, actor, alarm_id):
    alarm = rpc.metrics.get_alarm(actor, alarm_id)  # NotFound unless the actor may see it
    rpc.metrics.delete_alarm(actor, alarm_id)
    back = f"/instances/{alarm['instance']}" if alarm["instance"] else f"/admin/hosts/{alarm['host']}"
    return redirect(f"{back}#alarms", code=303)
