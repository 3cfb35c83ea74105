"""Catalogue and instances (the instances, storage and metrics services)."""
from gateway import schemas as own
from gateway.api.registry import INSTANCES, METRICS, STORAGE, route
from gateway.routes import QueryParam


@route("GET", "/api/v1/flavors", tag="catalogue", summary="List instance flavors",
       response=INSTANCES + "FlavorSchema", many=True)
def list_flavors(rpc, actor):
    return rpc.instances.list_flavors()


@route("GET", "/api/v1/images", tag="catalogue",
       summary="List the images I may see: public ones, my courses', my own (uploads under way and "
               "failed ones too: state)",
       response=STORAGE + "ImageSchema", many=True)
def list_images(rpc, actor):
    return rpc.storage.list_images(actor)


@route("POST", "/api/v1/images", tag="catalogue",
       summary="Create an image to upload (state queued; then PUT its file), public (admins), for a "
               "course (its managers) or private; or register a file on the storage machine (admins, "
               "source_path). A name uploaded again is its next version",
       body=STORAGE + "NewImageRequest", response=STORAGE + "ImageSchema", status=201, errors=(409,))
def register_image(rpc, actor, body):
    return rpc.storage.create_image(actor, body)


@route("POST", "/api/v1/instances", tag="instances",
       summary="Create an instance in a project (accepted; poll until running or error); quota-checked",
       body=INSTANCES + "CreateInstanceRequest", response=INSTANCES + "InstanceSchema", status=202,
       errors=(404, 409, 503))  # 404: no such image (id or name), key or project
def create_instance(rpc, actor, body):
    return rpc.instances.create_instance(actor, body)


@route("GET", "/api/v1/instances", tag="instances",
       summary="List instances: mine and those of the projects I manage (all for an admin)",
       response=INSTANCES + "InstanceSchema", many=True,
       query=(QueryParam("include_deleted", "boolean", False, "also list deleted instances"),
              QueryParam("project", "integer", None, "only this project's", minimum=1)))
def list_instances(rpc, actor, include_deleted, project):
    return rpc.instances.list_instances(actor, include_deleted, project)


@route("GET", "/api/v1/instances/<uuid:instance_id>", tag="instances",
       summary="Get an instance, with the data volumes attached to it",
       response="gateway.composed_schemas:InstanceWithVolumesSchema")
def get_instance(rpc, actor, instance_id):
    instance = rpc.instances.get_instance(actor, instance_id)  # 404 unless the actor may see it
    return {**instance, "volumes": rpc.storage.list_instance_volumes(instance["id"])}


@route("PATCH", "/api/v1/instances/<uuid:instance_id>", tag="instances",
       summary="Change an instance's CPU weight and cap, memory or bandwidth, live (owner or admin; "
               "running or stopped; memory growth is quota-checked)",
       body=INSTANCES + "SetResourcesRequest", response=INSTANCES + "InstanceSchema",
       errors=(409, 502))
def set_instance_resources(rpc, actor, instance_id, body):
    return rpc.instances.set_instance_resources(actor, instance_id, body)


@route("POST", "/api/v1/instances/<uuid:instance_id>/resize", tag="instances",
       summary="Resize to another flavor (owner or admin): a stopped instance at once; a running one live "
               "when its vCPUs and disk stay and its memory fits what it started with, else only with "
               "confirm_restart (accepted: resizing, then running); growth is quota- and host-checked",
       body=INSTANCES + "ResizeRequest", response=INSTANCES + "InstanceSchema", status=202,
       errors=(409, 502))
def resize_instance(rpc, actor, instance_id, body):
    return rpc.instances.resize_instance(actor, instance_id, body)


@route("POST", "/api/v1/instances/<uuid:instance_id>/migrate", tag="instances",
       summary="Migrate an instance to another host (admin): a running one live, a stopped one cold; to the "
               "named host, or the scheduler's choice among the others (accepted: migrating, then running or "
               "stopped there; a failed migration leaves it where it was, with the reason)",
       body=INSTANCES + "MigrateRequest", response=INSTANCES + "InstanceSchema", status=202,
       errors=(409,))
def migrate_instance(rpc, actor, instance_id, body):
    return rpc.instances.migrate_instance(actor, instance_id, body)


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
       response=INSTANCES + "InstanceSchema", status=202, errors=(409,))
def stop_instance(rpc, actor, instance_id):
    return rpc.instances.stop_instance(actor, instance_id)


@route("POST", "/api/v1/instances/<uuid:instance_id>/start", tag="instances",
       summary="Start a stopped instance (accepted); quota-checked", response=INSTANCES + "InstanceSchema",
       status=202, errors=(409,))
def start_instance(rpc, actor, instance_id):
    return rpc.instances.start_instance(actor, instance_id)


@route("POST", "/api/v1/instances/<uuid:instance_id>/reboot", tag="instances",
       summary="Reboot a running instance (accepted)", response=INSTANCES + "InstanceSchema", status=202,
       errors=(409,))
def reboot_instance(rpc, actor, instance_id):
    return rpc.instances.reboot_instance(actor, instance_id)


@route("GET", "/api/v1/instances/<uuid:instance_id>/console", tag="instances",
       summary="Serial console output of an instance (EC2 GetConsoleOutput)", response=own.ConsoleSchema)
def get_console(rpc, actor, instance_id):
    return rpc.instances.get_console(actor, instance_id)


@route("GET", "/api/v1/instances/<uuid:instance_id>/metrics", tag="instances",
       summary="Resource usage time series of an instance",
       response=METRICS + "InstanceMetricsSchema",
       query=(QueryParam("seconds", "integer", 3600, "window length", minimum=60, maximum=86400),))
def get_instance_metrics(rpc, actor, instance_id, seconds):
    # The metrics service does not know owners: the instances service checks the actor may see
    # this instance (NotFound/Forbidden propagate) before any metrics are read.
    rpc.instances.get_instance(actor, instance_id)
    return rpc.metrics.get_instance_metrics(instance_id, seconds)
