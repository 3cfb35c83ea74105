"""My notification preferences: which kinds of mail I get (the metrics service, which sends
labcloud's mail)."""
from gateway.api.registry import METRICS, route


@route("GET", "/api/v1/users/me/notifications", tag="users",
       summary="Which kinds of mail I get: account, security (always on), instance",
       response=METRICS + "NotificationKindSchema", many=True)
def get_notification_preferences(rpc, actor):
    return rpc.metrics.get_notification_preferences(actor)


@route("PUT", "/api/v1/users/me/notifications", tag="users",
       summary="Turn kinds of mail on (true) or off (false); security mail cannot be turned off (400)",
       body=METRICS + "NotificationPreferencesRequest", response=METRICS + "NotificationKindSchema",
       many=True)
def set_notification_preferences(rpc, actor, body):
    return rpc.metrics.set_notification_preferences(actor, body)
