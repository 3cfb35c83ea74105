"""Every endpoint of the gateway. Each view is one RPC call (after authentication); the services
decide what an actor may do, so nothing here looks at roles or owners."""
from flask import Response, current_app

from gateway import schemas as own
from gateway.routes import QueryParam, RouteRegistry

ACCOUNTS = "services.accounts.schemas:"
INSTANCES = "services.instances.schemas:"
STORAGE = "services.storage.schemas:"
METRICS = "services.metrics.schemas:"

api = RouteRegistry()
route = api.route


# -- users and tokens ----------------------------------------------------------------------------

@route("POST", "/api/v1/users", tag="users", summary="Sign up (the account starts pending)",
       auth=False, body=ACCOUNTS + "SignupRequest", response=ACCOUNTS + "UserSchema", status=201)
def signup(rpc, body):
    return rpc.accounts.signup(body)


@route("GET", "/api/v1/users", tag="users", summary="List users (admin)",
       response=ACCOUNTS + "UserSchema", many=True)
def list_users(rpc, actor):
    return rpc.accounts.list_users(actor)


@route("GET", "/api/v1/users/<int:user_id>", tag="users", summary="Get a user (self or admin)",
       response=ACCOUNTS + "UserSchema")
def get_user(rpc, actor, user_id):
    return rpc.accounts.get_user(actor, user_id)


@route("POST", "/api/v1/users/<int:user_id>/approve", tag="users",
       summary="Approve a pending user (admin)", response=ACCOUNTS + "UserSchema")
def approve_user(rpc, actor, user_id):
    return rpc.accounts.approve_user(actor, user_id)


@route("POST", "/api/v1/tokens", tag="users", summary="Issue a bearer token", auth=False,
       body=ACCOUNTS + "TokenRequest", response=ACCOUNTS + "TokenSchema", status=201)
def issue_token(rpc, body):
    return rpc.accounts.issue_token(body)


# -- SSH keys ------------------------------------------------------------------------------------

@route("POST", "/api/v1/keys", tag="keys", summary="Add an SSH public key",
       body=ACCOUNTS + "AddKeyRequest", response=ACCOUNTS + "KeySchema", status=201)
def add_key(rpc, actor, body):
    return rpc.accounts.add_key(actor, body)


@route("GET", "/api/v1/keys", tag="keys", summary="List my SSH keys",
       response=ACCOUNTS + "KeySchema", many=True)
def list_keys(rpc, actor):
    return rpc.accounts.list_keys(actor)


@route("GET", "/api/v1/keys/<int:key_id>", tag="keys", summary="Get an SSH key",
       response=ACCOUNTS + "KeySchema")
def get_key(rpc, actor, key_id):
    return rpc.accounts.get_key(actor, key_id)


@route("DELETE", "/api/v1/keys/<int:key_id>", tag="keys", summary="Delete an SSH key",
       response=own.DeletedSchema)
def delete_key(rpc, actor, key_id):
    return rpc.accounts.delete_key(actor, key_id)


# -- catalogue -----------------------------------------------------------------------------------

@route("GET", "/api/v1/flavors", tag="catalogue", summary="List instance flavors",
       response=INSTANCES + "FlavorSchema", many=True)
def list_flavors(rpc, actor):
    return rpc.instances.list_flavors()


@route("GET", "/api/v1/images", tag="catalogue", summary="List bootable images",
       response=STORAGE + "ImageSchema", many=True)
def list_images(rpc, actor):
    return rpc.storage.list_images()


@route("POST", "/api/v1/images", tag="catalogue",
       summary="Register an image (admin): a built course image or a qcow2 made elsewhere",
       body=STORAGE + "RegisterImageRequest", response=STORAGE + "ImageSchema", status=201)
def register_image(rpc, actor, body):
    return rpc.storage.register_image(actor, body)


# -- instances -----------------------------------------------------------------------------------

@route("POST", "/api/v1/instances", tag="instances",
       summary="Create an instance (accepted; poll until running or error)",
       body=INSTANCES + "CreateInstanceRequest", response=INSTANCES + "InstanceSchema", status=202)
def create_instance(rpc, actor, body):
    return rpc.instances.create_instance(actor, body)


@route("GET", "/api/v1/instances", tag="instances", summary="List instances (all for an admin)",
       response=INSTANCES + "InstanceSchema", many=True,
       query=(QueryParam("include_deleted", "boolean", False, "also list deleted instances"),))
def list_instances(rpc, actor, include_deleted):
    return rpc.instances.list_instances(actor, include_deleted)


@route("GET", "/api/v1/instances/<uuid:instance_id>", tag="instances", summary="Get an instance",
       response=INSTANCES + "InstanceSchema")
def get_instance(rpc, actor, instance_id):
    return rpc.instances.get_instance(actor, instance_id)


@route("GET", "/api/v1/instances/<uuid:instance_id>/actions", tag="instances",
       summary="The instance's action log: every request and repair, who asked, when, how it ended",
       response=INSTANCES + "InstanceActionSchema", many=True)
def list_instance_actions(rpc, actor, instance_id):
    return rpc.instances.list_instance_actions(actor, instance_id)


@route("DELETE", "/api/v1/instances/<uuid:instance_id>", tag="instances",
       summary="Delete an instance (accepted; poll until deleted)",
       response=INSTANCES + "InstanceSchema", status=202)
def delete_instance(rpc, actor, instance_id):
    return rpc.instances.delete_instance(actor, instance_id)


@route("POST", "/api/v1/instances/<uuid:instance_id>/stop", tag="instances",
       summary="Stop an instance: ACPI shutdown, then power off after a timeout (accepted)",
       response=INSTANCES + "InstanceSchema", status=202)
def stop_instance(rpc, actor, instance_id):
    return rpc.instances.stop_instance(actor, instance_id)


@route("POST", "/api/v1/instances/<uuid:instance_id>/start", tag="instances",
       summary="Start a stopped instance (accepted)", response=INSTANCES + "InstanceSchema", status=202)
def start_instance(rpc, actor, instance_id):
    return rpc.instances.start_instance(actor, instance_id)


@route("POST", "/api/v1/instances/<uuid:instance_id>/reboot", tag="instances",
       summary="Reboot a running instance (accepted)", response=INSTANCES + "InstanceSchema", status=202)
def reboot_instance(rpc, actor, instance_id):
    return rpc.instances.reboot_instance(actor, instance_id)


@route("GET", "/api/v1/instances/<uuid:instance_id>/console", tag="instances",
       summary="Serial console output of an instance (EC2 GetConsoleOutput)", response=own.ConsoleSchema)
def get_console(rpc, actor, instance_id):
    return rpc.instances.get_console(actor, instance_id)


@route("GET", "/api/v1/instances/<uuid:instance_id>/metrics", tag="instances",
       summary="Resource usage time series of an instance",
       response=METRICS + "InstanceMetricsSchema",
       query=(QueryParam("seconds", "integer", 3600, "window length, 60..86400"),))
def get_instance_metrics(rpc, actor, instance_id, seconds):
    # The metrics service does not know owners: the instances service checks the actor may see
    # this instance (NotFound/Forbidden propagate) before any metrics are read.
    rpc.instances.get_instance(actor, instance_id)
    return rpc.metrics.get_instance_metrics(instance_id, seconds)


# -- administration ------------------------------------------------------------------------------

@route("POST", "/api/v1/admin/reconcile", tag="admin",
       summary="Reconcile now (admin): compare every host with the database, repair and report",
       response=INSTANCES + "ReconcileReportSchema")
def reconcile(rpc, actor):
    return rpc.instances.reconcile(actor)


@route("GET", "/api/v1/admin/reconcile", tag="admin", summary="Recent reconcile reports, newest first (admin)",
       response=INSTANCES + "ReconcileReportSchema", many=True,
       query=(QueryParam("limit", "integer", 20, "how many, 1..200"),))
def list_reconcile_reports(rpc, actor, limit):
    return rpc.instances.list_reconcile_reports(actor, limit)


# -- service endpoints (no RPC) ------------------------------------------------------------------

@route("GET", "/api/v1/openapi.json", tag="meta", summary="This OpenAPI document", auth=False,
       uses_rpc=False, response={"type": "object"})
def openapi():
    return current_app.extensions["openapi"]


@route("GET", "/healthz", tag="meta", summary="Liveness of the gateway process", auth=False,
       uses_rpc=False, response=own.HealthSchema)
def healthz():
    return {"status": "ok"}


@route("GET", "/metrics", tag="meta", summary="Prometheus metrics", auth=False, uses_rpc=False,
       response={"type": "string"}, content_type="text/plain")
def metrics():
    exporter = current_app.extensions["prometheus"]
    return Response(exporter.render(), content_type=exporter.content_type)
