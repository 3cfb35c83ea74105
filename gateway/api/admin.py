"""Operations: reconcile, the hosts and the audit log."""
from gateway.api.registry import ACCOUNTS, INSTANCES, route
from gateway.routes import QueryParam


@route("POST", "/api/v1/admin/reconcile", tag="admin",
       summary="Reconcile now (admin): compare every host with the database, repair and report",
       response=INSTANCES + "ReconcileReportSchema")
def reconcile(rpc, actor):
    return rpc.instances.reconcile(actor)


@route("GET", "/api/v1/admin/reconcile", tag="admin", summary="Recent reconcile reports, newest first (admin)",
       response=INSTANCES + "ReconcileReportSchema", many=True,
       query=(QueryParam("limit", "integer", 20, "how many", minimum=1, maximum=200),))
def list_reconcile_reports(rpc, actor, limit):
    return rpc.instances.list_reconcile_reports(actor, limit)


@route("GET", "/api/v1/audit", tag="admin",
       summary="The audit log of state-changing requests, newest first (admin)",
       response=ACCOUNTS + "AuditRecordSchema", many=True,
       query=(QueryParam("user", "integer", None, "only this user's requests", minimum=1),
              QueryParam("project", "integer", None, "only requests for this project", minimum=1),
              QueryParam("since", "string", None, "only requests at or after this time (RFC 3339)",
                         format="date-time", max_length=64),
              QueryParam("limit", "integer", 100, "how many", minimum=1, maximum=1000)))
def list_audit(rpc, actor, user, project, since, limit):
    query = {"user": user, "project": project, "since": since, "limit": limit}
    return rpc.accounts.list_audit(actor, {k: v for k, v in query.items() if v is not None})


@route("GET", "/api/v1/hosts", tag="admin",
       summary="The hypervisor hosts: state (up, down, disabled, draining), size, allocation and capacity "
               "under the allocation ratios, instance count, last heartbeat (admin)",
       response=INSTANCES + "HostSchema", many=True)
def list_hosts(rpc, actor):
    return rpc.instances.list_hosts(actor)


@route("GET", "/api/v1/hosts/<host_name:name>", tag="admin",
       summary="One host and the instances on it (admin)", response=INSTANCES + "HostDetailSchema")
def get_host(rpc, actor, name):
    return rpc.instances.get_host(actor, name)


@route("POST", "/api/v1/hosts/<host_name:name>/disable", tag="admin",
       summary="Disable a host: no new instances are placed on it; what runs there stays (admin)",
       response=INSTANCES + "HostSchema")
def disable_host(rpc, actor, name):
    return rpc.instances.disable_host(actor, name)


@route("POST", "/api/v1/hosts/<host_name:name>/enable", tag="admin",
       summary="Enable a host again: it takes new instances (admin)", response=INSTANCES + "HostSchema")
def enable_host(rpc, actor, name):
    return rpc.instances.enable_host(actor, name)


@route("POST", "/api/v1/hosts/<host_name:name>/drain", tag="admin",
       summary="Drain a host: no new instances, every running one migrated live and every stopped one cold to "
               "other hosts, then the host is disabled (admin); the answer lists the migrations started and the "
               "instances that could not move",
       response=INSTANCES + "HostDrainSchema", status=202)
def drain_host(rpc, actor, name):
    return rpc.instances.drain_host(actor, name)
