"""Instances service: flavors, placement, lifecycle. Entry points only: lifecycle.py records what
users ask, saga.py does the work on other services and hosts, scheduler.py places."""
import eventlet
from nameko.dependency_providers import Config
from nameko.events import EventDispatcher, event_handler
from nameko.rpc import RpcProxy, rpc

from common.clock import Clock
from common.db import Database
from common.hostrpc import HOST_EVENT_SOURCE, HostAgentRpc
from common.schemas import ActorSchema, dump, load
from hostagent.schemas import DomainLifecycleSchema, HeartbeatSchema
from services.instances import guest_access, lifecycle, power, saga, scheduler
from services.instances.models import Instance
from services.instances.schemas import (
    CreateInstanceRequest, FlavorSchema, GuestMetadataSchema, HostSchema, InstanceIdSchema, InstanceSchema,
    PowerActionSchema)


class InstancesService:
    name = "instances"

    db = Database()
    clock = Clock()
    config = Config()
    dispatch = EventDispatcher()
    accounts = RpcProxy("accounts")
    network = RpcProxy("network")
    storage = RpcProxy("storage")
    hosts = HostAgentRpc()

    # ----- users' requests -----
    @rpc
    def list_flavors(self):
        return dump(FlavorSchema, lifecycle.list_flavors(self.db), many=True)

    @rpc
    def create_instance(self, actor, request):
        actor = load(ActorSchema, actor)
        request = load(CreateInstanceRequest, request)
        flavor = lifecycle.get_flavor(self.db, request["flavor"])
        self.storage.get_image(request["image"])           # NotFound names the image
        key = self.accounts.get_key(actor, request["key"])  # NotFound unless the actor's own key
        instance = lifecycle.record_instance(self.db, actor, request, flavor, key)
        self.dispatch("instance_create_requested", {"instance_id": instance.id})
        return dump(InstanceSchema, instance)

    @rpc
    def get_instance(self, actor, instance_id):
        return dump(InstanceSchema, lifecycle.visible_instance(self.db, load(ActorSchema, actor), instance_id))

    @rpc
    def list_instances(self, actor):
        return dump(InstanceSchema, lifecycle.list_instances(self.db, load(ActorSchema, actor)), many=True)

    @rpc
    def delete_instance(self, actor, instance_id):
        instance, needs_teardown = lifecycle.request_delete(
            self.db, load(ActorSchema, actor), instance_id, self.clock())
        if needs_teardown:
            self.dispatch("instance_delete_requested", {"instance_id": instance.id})
        elif instance.state == "deleted":
            self.dispatch("instance_deleted", dump(InstanceSchema, instance))
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
        instance = power.request_power(self.db, load(ActorSchema, actor), instance_id, action)
        self.dispatch("instance_power_requested", {"instance_id": instance.id, "action": action})
        return dump(InstanceSchema, instance)

    @rpc
    def get_console(self, actor, instance_id, max_bytes=65536):
        instance = lifecycle.visible_instance(self.db, load(ActorSchema, actor), instance_id)
        if not instance.host:
            return {"output": ""}
        return self.hosts(instance.host).get_console(
            {"instance_id": instance.id, "max_bytes": int(max_bytes)})

    @rpc
    def get_guest_metadata(self, host, ip):
        return dump(GuestMetadataSchema, guest_access.guest_metadata(
            self.db, host, ip, self.config.get("AVAILABILITY_ZONE", "labcloud")))

    @rpc
    def list_hosts(self):
        return dump(HostSchema, scheduler.list_hosts(self.db), many=True)

    # ----- the sagas, driven by our own events so a crash mid-way is redelivered -----
    @event_handler("instances", "instance_create_requested")
    def on_create_requested(self, payload):
        instance_id = load(InstanceIdSchema, payload)["instance_id"]
        state = saga.run_create(self.db, instance_id, self._peers(),
                                scheduler.policy_from_config(self.config), self.clock)
        self._announce(instance_id, state)

    @event_handler("instances", "instance_delete_requested")
    def on_delete_requested(self, payload):
        instance_id = load(InstanceIdSchema, payload)["instance_id"]
        state = saga.run_delete(self.db, instance_id, self._peers(), self.clock)
        self._announce(instance_id, state)

    @event_handler("instances", "instance_power_requested")
    def on_power_requested(self, payload):
        request = load(PowerActionSchema, payload)
        state = power.run_power(self.db, request["instance_id"], request["action"],
                                self.hosts, self.clock)
        self._announce(request["instance_id"], state)

    @event_handler(HOST_EVENT_SOURCE, "domain_lifecycle")
    def on_domain_lifecycle(self, payload):
        event = DomainLifecycleSchema(unknown="exclude").load(payload)
        state = power.observe_domain_state(self.db, event["instance_id"], event["state"], self.clock)
        self._announce(event["instance_id"], state)

    @event_handler("instances", "instance_running")
    def check_ssh_after_start(self, payload):
        """Orca's post-boot step: note when the guest's SSH first answers through its endpoint."""
        instance = self.db.get(Instance, payload["id"])
        if instance is None or not instance.ssh_port or instance.ssh_ready_at:
            return
        started_at = instance.started_at
        endpoint = self.config.get("SSH_ENDPOINT_HOST", "127.0.0.1")
        if guest_access.wait_for_ssh(endpoint, instance.ssh_port, float(self.config.get("SSH_READY_TIMEOUT", 300)),
                                     sleep=eventlet.sleep):
            saga.transition(self.db, instance.id, ["running"], "running", ssh_ready_at=self.clock())
            self.db.expire_all()
            instance = self.db.get(Instance, instance.id)
            if instance.started_at == started_at:
                self.dispatch("instance_ready", dump(InstanceSchema, instance))

    @event_handler(HOST_EVENT_SOURCE, "host_heartbeat")
    def on_host_heartbeat(self, payload):
        scheduler.record_heartbeat(self.db, HeartbeatSchema(unknown="exclude").load(payload), self.clock())

    def _peers(self):
        return saga.Collaborators(network=self.network, storage=self.storage, hosts=self.hosts)

    def _announce(self, instance_id, state):
        event = {"running": "instance_running", "error": "instance_failed",
                 "deleted": "instance_deleted"}.get(state)
        if event:
            self.db.expire_all()
            instance = self.db.get(Instance, instance_id)
            self.dispatch(event, dump(InstanceSchema, instance))
