"""Scheduled actions in the portal: a panel on the instance page (its owner, course managers,
admins), loaded by htmx, listing the instance's schedules with their next run and last outcome,
with a form to add one and a button to delete one. The metrics service decides who may."""
from flask import redirect, render_template, request

from common import policy
from gateway.api.registry import METRICS
from gateway.portal.forms import attempt, body_from_form, form_page
from gateway.portal.gather import gather
from gateway.portal.registry import page


def _panel(rpc, actor, instance_id, errors=None, form=None, standalone=False):
    instance, schedules, flavors = gather((rpc.instances.get_instance, actor, instance_id),
                                          (rpc.metrics.list_schedules, actor, instance_id), (rpc.instances.list_flavors,))
    histories = gather(*[(rpc.metrics.get_schedule_history, actor, s["id"]) for s in schedules]) if schedules else []
    target = {"project_id": instance["project"]}  # an instance's owner sees others' schedules, without Delete
    context = {"schedules": list(zip(schedules, [h[0] if h else None for h in histories])),
               "deletable": {s["id"] for s in schedules
                             if policy.allowed(actor, "schedule:delete", dict(target, user_id=s["user_id"]))},
               "base": f"/instances/{instance_id}", "form": form or {},
               "flavors": [(f["id"], f["name"]) for f in flavors]}
    if standalone:  # a refused form: the panel on a page of its own, with the service's status
        return form_page("schedules/page.html", errors, title="Schedules", **context)
    return render_template("schedules/panel.html", errors=errors, **context)


@page("/instances/<uuid:instance_id>/schedules", title="Instance schedules", area="student", fragment=True)
def instance_schedules(rpc, actor, instance_id):
    return _panel(rpc, actor, instance_id)  # NotFound unless the actor may see the instance


@page("/instances/<uuid:instance_id>/schedules/new", title="New schedule", area="student", methods=("POST",))
def create_instance_schedule(rpc, actor, instance_id):
    body = dict(body_from_form(METRICS + "ScheduleCreateRequest"), instance=instance_id)
    _made, errors = attempt(lambda: rpc.metrics.create_schedule(actor, body))
    if errors:
        return _panel(rpc, actor, instance_id, errors, request.form, standalone=True)
    return redirect(f"/instances/{instance_id}#schedules", code=303)


@page("/schedules/<id:schedule_id>/delete", title="Delete schedule", area="student", methods=("POST",))
def delete_schedule_page(rpc, actor, schedule_id):
    schedule = rpc.metrics.get_schedule(actor, schedule_id)  # NotFound unless the actor may see it
    rpc.metrics.delete_schedule(actor, schedule_id)
    return redirect(f"/instances/{schedule['instance']}#schedules", code=303)
