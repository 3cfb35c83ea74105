"""Alarms on an instance's or a host's metrics (the metrics service decides who may)."""
from gateway import schemas as own
from gateway.api.registry import METRICS, route
from gateway.routes import QueryParam


@route("POST", "/api/v1/alarms", tag="alarms",
       summary="Create an alarm on an instance (its owner, its course's managers, admins) or a host "
               "(admins): metric, statistic, comparison, threshold, period, evaluation_periods, "
               "datapoints_to_alarm, missing_data, emails, actions",
       body=METRICS + "AlarmCreateRequest", response=METRICS + "AlarmSchema", status=201)
def create_alarm(rpc, actor, body):
    return rpc.metrics.create_alarm(actor, body)


@route("GET", "/api/v1/alarms", tag="alarms",
       summary="My alarms, those others put on my instances, and those on my courses' instances (admins: all)",
       response=METRICS + "AlarmSchema", many=True,
       query=(QueryParam("instance", "string", None, "only this instance's", max_length=64),))
def list_alarms(rpc, actor, instance):
    return rpc.metrics.list_alarms(actor, instance)


@route("GET", "/api/v1/alarms/<id:alarm_id>", tag="alarms", summary="An alarm and its state",
       response=METRICS + "AlarmSchema")
def get_alarm(rpc, actor, alarm_id):
    return rpc.metrics.get_alarm(actor, alarm_id)


@route("GET", "/api/v1/alarms/<id:alarm_id>/history", tag="alarms",
       summary="An alarm's state changes, newest first, with what its actions did",
       response=METRICS + "AlarmHistorySchema", many=True)
def get_alarm_history(rpc, actor, alarm_id):
    return rpc.metrics.get_alarm_history(actor, alarm_id)


@route("DELETE", "/api/v1/alarms/<id:alarm_id>", tag="alarms", summary="Delete an alarm and its history",
       response=own.DeletedSchema)
def delete_alarm(rpc, actor, alarm_id):
    return rpc.metrics.delete_alarm(actor, alarm_id)
