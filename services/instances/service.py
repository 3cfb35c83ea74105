"""Instances service: flavors, placement, lifecycle. Entry points only: states.py is the state
machine, access.py says who sees what, lifecycle.py records what users ask, quotas.py charges it,
saga.py and power.py do the work on other services and hosts, reconcile.py keeps the database true
to the hosts, scheduler.py places, owners.py handles the instances of deleted users."""
import socket
import uuid

from nameko.dependency_providers import Config
from nameko.events import EventDispatcher, event_handler
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy, rpc
from sqlalchemy import select

from common import policy
from common.actors import load_actor
from common.clock import Clock
from common.db import Database, retry_transient_workers
from common.hostrpc import HOST_EVENT_SOURCE, HostAgentRpc
from common.prometheus import ProcessMetrics
from common.schemas import dump, load
from common.timers import config_timer
from hostagent.schemas import DomainLifecycleSchema, DomainSshReadySchema, HeartbeatSchema
from services.instances import (
    access, guest_access, host_admin, instance_store, lifecycle, migrate, owners, power, quotas, reconcile, resize,
    saga, scheduler, share_changes)
from services.instances.models import Instance
from services.instances.schemas import (
    CreateInstanceRequest, FlavorSchema, GuestMetadataSchema, HostDetailSchema, HostDrainSchema, HostNameSchema, HostSchema, InstanceActionSchema,
    InstanceIdSchema, InstanceSchema, ListInstancesRequest, MigrateRequest, MigrateRequestedSchema, PowerActionSchema, ProjectIdSchema,
    ProjectUsageSchema, ReconcileReportSchema, ResizeRequest, ResizeRequestedSchema, SaveImageRequest, SetResourcesRequest,
    UserDeletedSchema)

# Which event announces that an instance reached a state.
ANNOUNCED = {"running": "instance_running", "error": "instance_failed", "deleted": "instance_deleted",
             "stopped": "instance_stopped", "host_down": "instance_host_down"}


class ReplicaName(DependencyProvider):
    """This container's name as a reconcile lease holder (several replicas may run, even in one
    process in tests)."""

    def setup(self):
        self.name = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"

    def get_dependency(self, worker_ctx):
        return self.name


@retry_transient_workers
class InstancesService:
    name = "instances"
    prometheus = ProcessMetrics()  # served on PROMETHEUS_PORT (common/prometheus.py)

    db = Database()
    clock = Clock()
    config = Config()
    dispatch = EventDispatcher()
    accounts = RpcProxy("accounts")
    network = RpcProxy("network")
    storage = RpcProxy("storage")
    hosts = HostAgentRpc()
    replica = ReplicaName()

    # ----- users' requests -----
    @rpc
    def list_flavors(self):
        return dump(FlavorSchema, lifecycle.list_flavors(self.db), many=True)

    @rpc
    def create_instance(self, actor, request):
        actor = load_actor(actor)
        request = load(CreateInstanceRequest, request)
        project_id = access.creation_project(actor, request["project"])
        flavor = lifecycle.get_flavor(self.db, request["flavor"])
        # The storage service resolves a name to its newest version the actor may see; NotFound
        # and InvalidInput name the image; a flavor below its minimums is refused here, not later.
        image = self.storage.find_boot_image(actor, request["image"])
        lifecycle.check_flavor_fits_image(flavor, image)
        request = {**request, "image": image["id"]}
        key = self.accounts.get_key(actor, request["key"])  # accounts decides whose keys the actor may use
        limits = self.accounts.get_quota_limits(project_id, actor["id"])  # NotFound: no such project
        instance_id = str(uuid.uuid4())
        if request["security_groups"]:   # the network service checks the names (400) and binds them
            self.network.bind_security_groups({"owner": instance_id, "project": project_id,
                                               "security_groups": request["security_groups"]})
        try:
            instance = lifecycle.record_instance(self.db, actor, request, flavor, key, project_id, limits,
                                                 instance_id)
        except Exception:
            if request["security_groups"]:   # not made: its groups go (release is idempotent)
                self.network.release_address({"owner": instance_id})
            raise
        self.dispatch("instance_create_requested", {"instance_id": instance.id})
        return dump(InstanceSchema, instance)

    @rpc
    def save_instance_image(self, actor, instance_id, request):
        """A stopped instance's root disk as a new image (the storage service makes it; it answers
        the image `saving`). Conflict naming `state` unless the instance is stopped."""
        actor = load_actor(actor)
        request = load(SaveImageRequest, request)
        instance = access.visible_instance(self.db, actor, instance_id, "instance:save_image")
        lifecycle.check_stopped_for_save(instance)
        self.db.commit()  # nothing open while storage answers
        return self.storage.save_instance_image(actor, {**request, "instance_id": instance.id,
                                                        "project": instance.project_id})

    @rpc
    def get_instance(self, actor, instance_id):
        return dump(InstanceSchema, access.visible_instance(self.db, load_actor(actor), instance_id))

    @rpc
    def list_instances(self, actor, include_deleted=False, project=None):
        query = load(ListInstancesRequest, {"include_deleted": include_deleted, "project": project})
        return dump(InstanceSchema, access.list_instances(self.db, load_actor(actor), **query), many=True)

    @rpc
    def list_instance_actions(self, actor, instance_id):
        instance = access.visible_instance(self.db, load_actor(actor), instance_id, "instance:actions",
                                           include_deleted=True)
        return dump(InstanceActionSchema, instance_store.list_actions(self.db, instance.id), many=True)

    @rpc
    def delete_instance(self, actor, instance_id):
        instance = lifecycle.request_delete(self.db, load_actor(actor), instance_id)
        self._delete_requested(instance)
        return dump(InstanceSchema, instance)

    @rpc
    def stop_instance(self, actor, instance_id):
        return self._request_power(actor, instance_id, "stop")

    @rpc
    def start_instance(self, actor, instance_id):
        return self._request_power(actor, instance_id, "start")

    @rpc
    def reboot_instance(self, actor, instance_id):
        return self._request_power(actor, instance_id, "reboot")

    def _request_power(self, actor, instance_id, action):
        instance, requested = lifecycle.request_power(self.db, load_actor(actor), instance_id, action,
                                                      self.accounts.get_quota_limits)
        if requested:
            self.dispatch("instance_power_requested", {"instance_id": instance.id, "action": action})
        return dump(InstanceSchema, instance)

    @rpc
    def set_instance_resources(self, actor, instance_id, request):
        """Change resource shares; the guest has them when this returns (share_changes.py)."""
        request = load(SetResourcesRequest, request)
        instance = share_changes.set_shares(self.db, load_actor(actor), instance_id, request,
                                            self.accounts.get_quota_limits, self.hosts, self._policy())
        return dump(InstanceSchema, instance)

    @rpc
    def resize_instance(self, actor, instance_id, request):
        """Another flavor: at once (stopped, or live within what the guest started with) or, when
        confirmed, through a restart (state `resizing`; resize.py)."""
        request = load(ResizeRequest, request)
        instance, mode, before = resize.request_resize(self.db, load_actor(actor), instance_id, request,
                                                       self.accounts.get_quota_limits, self._policy(),
                                                       self.storage.root_disk_growth)
        if mode in ("cold", "live"):
            instance = resize.apply_now(self.db, instance, mode, before, self._peers())
        elif mode == "restart":
            self.dispatch("instance_resize_requested", {"instance_id": instance.id})
        return dump(InstanceSchema, instance)

    @rpc
    def migrate_instance(self, actor, instance_id, request):
        """Admins: an instance moves to another host, a running one live (migrate.py); answers at
        once with the instance `migrating`."""
        request = load(MigrateRequest, request)
        instance, was = migrate.request_migration(self.db, load_actor(actor), instance_id, request,
                                                  self._policy(), self.clock(), self._routed_subnet_of)
        if was:
            self.dispatch("instance_migrate_requested", {"instance_id": instance.id, "live": was == "running"})
        return dump(InstanceSchema, instance)

    @rpc
    def get_console(self, actor, instance_id, max_bytes=65536):
        instance = access.visible_instance(self.db, load_actor(actor), instance_id, "instance:console")
        if not instance.host:
            return {"output": ""}
        return self.hosts(instance.host).get_console(
            {"instance_id": instance.id, "max_bytes": int(max_bytes)})

    # ----- internal: other services ask -----
    @rpc
    def get_project_usage(self, project_id):
        """What the project's instances take of its quota (accounts' usage and project delete ask)."""
        project_id = load(ProjectIdSchema, {"project_id": project_id})["project_id"]
        usage = quotas.project_usage(self.db, project_id)
        return dump(ProjectUsageSchema, {"project": usage["project"],
                                         "users": {str(u): v for u, v in usage["users"].items()}})

    @event_handler("accounts", "user_deleted")
    def on_user_deleted(self, payload):
        event = UserDeletedSchema(unknown="exclude").load(payload)
        if event["transfer_to"] is not None:
            owners.transfer_instances(self.db, event["user_id"], event["transfer_to"], event["username"])
            return
        for instance in owners.delete_instances(self.db, event["user_id"], event["username"]):
            self._delete_requested(instance)

    @rpc
    def get_guest_metadata(self, host, ip):
        return dump(GuestMetadataSchema, guest_access.guest_metadata(
            self.db, host, ip, self.config.get("AVAILABILITY_ZONE", "labcloud")))

    @rpc
    def list_hosts(self, actor=None):
        """Admins; without an actor, an internal caller (the launcher waits for its hosts with it)."""
        if actor is not None:
            policy.enforce(load_actor(actor), "host:list", what="list hosts")
        return dump(HostSchema, scheduler.list_hosts(self.db, self._policy(), self.clock()), many=True)

    @rpc
    def get_host(self, actor, name):
        policy.enforce(load_actor(actor), "host:get", what="look at a host")
        name = load(HostNameSchema, {"name": name})["name"]
        return dump(HostDetailSchema, host_admin.get_host(self.db, name, self._policy(), self.clock()))

    @rpc
    def disable_host(self, actor, name):
        return self._set_host_state(actor, name, "disabled")

    @rpc
    def enable_host(self, actor, name):
        return self._set_host_state(actor, name, "enabled")

    @rpc
    def drain_host(self, actor, name):
        """No new placement, every running instance asked to migrate away; disabled once they are
        gone (host_admin.py)."""
        actor = load_actor(actor)
        policy.enforce(actor, "host:update", what="drain a host")
        name = load(HostNameSchema, {"name": name})["name"]
        host, started, refused = host_admin.drain(self.db, actor, name, self._policy(), self.clock(),
                                                  self._routed_subnet_of)
        for instance_id, was in started:
            self.dispatch("instance_migrate_requested", {"instance_id": instance_id, "live": was == "running"})
        return dump(HostDrainSchema, {**host, "migrations_started": [i for i, _was in started], "refused": refused})

    def _routed_subnet_of(self, instance_id):
        """The routed subnet the instance's address is on (it cannot leave its host), or None."""
        address = self.network.get_address(instance_id)
        return address["subnet"] if address and address.get("mode") == "routed" else None

    def _set_host_state(self, actor, name, state):
        policy.enforce(load_actor(actor), "host:update", what="disable or enable a host")
        name = load(HostNameSchema, {"name": name})["name"]
        return dump(HostSchema, host_admin.set_state(self.db, name, state, self._policy(), self.clock()))

    # ----- reconcile -----
    @rpc
    def reconcile(self, actor):
        """Run reconcile now over every host (admins); returns its report."""
        policy.enforce(load_actor(actor), "reconcile:run", what="run reconcile")
        return dump(ReconcileReportSchema, self._reconcile("admin"))

    @rpc
    def list_reconcile_reports(self, actor, limit=20):
        policy.enforce(load_actor(actor), "reconcile:list", what="read reconcile reports")
        return dump(ReconcileReportSchema, reconcile.list_reports(self.db, max(1, min(int(limit), 200))),
                    many=True)

    @config_timer("RECONCILE_INTERVAL", 60)
    def reconcile_periodically(self):
        self._reconcile("timer")

    @config_timer("HOST_CHECK_INTERVAL", 5)
    def check_hosts(self):
        for instance_id in reconcile.mark_hosts_down(self.db, self.clock(), self._policy()):
            self._announce(instance_id, "host_down")

    def _reconcile(self, trigger, only_host=None):
        peers = reconcile.Peers(self.hosts, self.storage, self.network, self._retry_delete)
        return reconcile.run(self.db, peers, self.replica, trigger, self.clock(), self._policy(),
                             reconcile.settings_from_config(self.config), only_host)

    def _retry_delete(self, instance_id):
        self.dispatch("instance_delete_requested", {"instance_id": instance_id})

    # ----- the sagas, driven by our own events so a crash mid-way is redelivered -----
    @event_handler("instances", "instance_create_requested")
    def on_create_requested(self, payload):
        instance_id = load(InstanceIdSchema, payload)["instance_id"]
        state = saga.run_create(self.db, instance_id, self._peers(), self._policy(), self.clock)
        self._announce(instance_id, state)

    @event_handler("instances", "instance_delete_requested")
    def on_delete_requested(self, payload):
        instance_id = load(InstanceIdSchema, payload)["instance_id"]
        state = saga.run_delete(self.db, instance_id, self._peers(), self.clock, self._host_is_up)
        self._announce(instance_id, state)

    @event_handler("instances", "instance_resize_requested")
    def on_resize_requested(self, payload):
        instance_id = load(ResizeRequestedSchema, payload)["instance_id"]
        self._announce(instance_id, resize.run_restart(self.db, instance_id, self._peers(), self.clock))

    @event_handler("instances", "instance_migrate_requested")
    def on_migrate_requested(self, payload):
        request = load(MigrateRequestedSchema, payload)
        instance_id = request["instance_id"]
        source = self.db.scalar(select(Instance.host).where(Instance.id == instance_id))
        self._announce(instance_id, migrate.run_migration(self.db, instance_id, self._peers(), self.clock,
                                                          request["live"]))
        host_admin.finish_drain(self.db, source)   # the last guest leaving a draining host disables it

    @event_handler("instances", "instance_power_requested")
    def on_power_requested(self, payload):
        request = load(PowerActionSchema, payload)
        state = power.run_power(self.db, request["instance_id"], request["action"], self.hosts, self.clock)
        self._announce(request["instance_id"], state)

    # ----- what hosts report -----
    @event_handler(HOST_EVENT_SOURCE, "domain_lifecycle")
    def on_domain_lifecycle(self, payload):
        event = DomainLifecycleSchema(unknown="exclude").load(payload)
        state = power.observe_domain_state(self.db, event["instance_id"], event["state"], event["seq"],
                                           event.get("host"))
        self._announce(event["instance_id"], state)

    @event_handler(HOST_EVENT_SOURCE, "domain_ssh_ready")
    def on_domain_ssh_ready(self, payload):
        event = DomainSshReadySchema(unknown="exclude").load(payload)
        if power.observe_ssh_ready(self.db, event["instance_id"], event["host"], event["seq"], event["at"]):
            self._announce(event["instance_id"], "ready")

    @event_handler(HOST_EVENT_SOURCE, "host_heartbeat")
    def on_host_heartbeat(self, payload):
        heartbeat = HeartbeatSchema(unknown="exclude").load(payload)
        _host, returned = scheduler.record_heartbeat(self.db, heartbeat, self.clock(), self._policy())
        if returned:  # new, or back after going quiet: what it runs now decides its instances' states
            self._reconcile("host_returned", only_host=heartbeat["host"])

    # ----- helpers -----
    def _delete_requested(self, instance):
        """After a delete request moved the instance: start its delete saga, or announce it gone."""
        if instance.state == "deleting":
            self.dispatch("instance_delete_requested", {"instance_id": instance.id})
        elif instance.state == "deleted":
            self.dispatch("instance_deleted", dump(InstanceSchema, instance))

    def _policy(self):
        return scheduler.policy_from_config(self.config)

    def _host_is_up(self, host):
        return scheduler.host_is_up(self.db, host, self.clock(), self._policy())

    def _peers(self):
        return saga.Collaborators(network=self.network, storage=self.storage, hosts=self.hosts)

    def _announce(self, instance_id, state):
        event = "instance_ready" if state == "ready" else ANNOUNCED.get(state)
        if event:
            self.db.expire_all()
            instance = self.db.get(Instance, instance_id)
            self.dispatch(event, dump(InstanceSchema, instance))
