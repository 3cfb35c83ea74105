"""Scheduled instance actions (resize, stop, start; the metrics service decides who may)."""
from gateway import schemas as own
from gateway.api.registry import METRICS, route
from gateway.routes import QueryParam


@route("POST", "/api/v1/schedules", tag="schedules",
       summary="Schedule a resize, stop or start of an instance (its owner, its course's managers, "
               "admins), once `at` a time or on a `cron` schedule in a `timezone`; a repeated "
               "`client_token` returns the first schedule",
       body=METRICS + "ScheduleCreateRequest", response=METRICS + "ScheduleSchema", status=201)
def create_schedule(rpc, actor, body):
    return rpc.metrics.create_schedule(actor, body)


@route("GET", "/api/v1/schedules", tag="schedules",
       summary="My schedules, those others put on my instances, and those on my courses' instances (admins: all)",
       response=METRICS + "ScheduleSchema", many=True,
       query=(QueryParam("instance", "string", None, "only this instance's", max_length=64),))
def list_schedules(rpc, actor, instance):
    return rpc.metrics.list_schedules(actor, instance)


@route("GET", "/api/v1/schedules/<id:schedule_id>", tag="schedules",
       summary="A schedule and when it runs next", response=METRICS + "ScheduleSchema")
def get_schedule(rpc, actor, schedule_id):
    return rpc.metrics.get_schedule(actor, schedule_id)


@route("GET", "/api/v1/schedules/<id:schedule_id>/history", tag="schedules",
       summary="A schedule's runs, newest first: when, what, ok or error and why",
       response=METRICS + "ScheduleRunSchema", many=True)
def get_schedule_history(rpc, actor, schedule_id):
    return rpc.metrics.get_schedule_history(actor, schedule_id)


@route("DELETE", "/api/v1/schedules/<id:schedule_id>", tag="schedules",
       summary="Delete a schedule and its history", response=own.DeletedSchema)
def delete_schedule(rpc, actor, schedule_id):
    return rpc.metrics.delete_schedule(actor, schedule_id)
