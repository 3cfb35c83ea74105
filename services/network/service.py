"""Network service: subnets, IP and MAC allocation, floating IPs, security groups. Entry points
only; allocation is in addresses.py (over ipam.py's free ranges), subnets in subnets.py, floating
IPs and security groups in their modules (their entry points in floating_rpc.py and
security_group_rpc.py), the hosts' filter and NAT rules in host_rules.py."""
from nameko.events import EventDispatcher, event_handler
from nameko.rpc import RpcProxy, rpc

from common import policy
from common.actors import load_actor
from common.clock import Clock
from common.errors import NotFound
from common.db import Database, retry_transient_workers
from common.prometheus import ProcessMetrics
from common.schemas import dump, load
from common.timers import config_timer
from common.hostrpc import HostAgentRpc
# The entry-point mixins as modules, not names: `nameko run` takes every class of this module
# that has entry points for a service of its own.
from services.network import addresses, blocks, floating, floating_rpc, host_rules, security_group_rpc, security_groups
from services.network import routed_hosts, subnets
from services.network.schemas import (
    AddressSchema, AllocateAddressRequest, BindSecurityGroupsRequest, CreateSubnetRequest, MacEntrySchema,
    NetworkSyncSchema, PortHostRequest, ProjectIdSchema, ReleaseAddressRequest, ReserveAddressRequest,
    ReserveBlockRequest, SubnetBlockSchema, SubnetIdSchema, SubnetSchema)


@retry_transient_workers
class NetworkService(floating_rpc.FloatingIpEntrypoints, security_group_rpc.SecurityGroupEntrypoints):
    name = "network"
    prometheus = ProcessMetrics()  # served on PROMETHEUS_PORT (common/prometheus.py)

    db = Database()
    dispatch = EventDispatcher()
    clock = Clock()
    hosts = HostAgentRpc()
    accounts = RpcProxy("accounts")
    instances = RpcProxy("instances")

    # ----- internal: the instances service allocates and releases -----
    @rpc
    def allocate_address(self, request):
        """With `project`, the instance is in the groups bound for it (bind_security_groups) or
        else in the project's default group; with `host`, that host gets its rules before the
        guest boots."""
        request = load(AllocateAddressRequest, request)
        owner = request["owner"]
        address, created = addresses.allocate_address(self.db, owner, request["subnet"], request["project"],
                                                      request["host"])
        if request["project"] is not None and not security_groups.groups_of(self.db, owner):
            security_groups.bind(self.db, owner, security_groups.groups_by_name(self.db, request["project"], None))
        self._push([request["host"]])
        result = dump(AddressSchema, address)
        if created:
            self.dispatch("address_allocated", result)
        return result

    @rpc
    def release_address(self, request):
        """The instance is gone: its address, its groups and its floating IP's association go,
        and its hosts lose its rules."""
        request = load(ReleaseAddressRequest, request)
        owner = request["owner"]
        hosts = self._hosts_of(owner)
        released = addresses.release_address(self.db, owner)
        security_groups.unbind(self.db, owner)
        floating.disassociate_owner(self.db, owner)
        self.db.commit()
        self._push(hosts)
        if released is None:
            return {"released": False}
        self.dispatch("address_released", dump(AddressSchema, released))
        return {"released": True}

    @rpc
    def bind_security_groups(self, request):
        """Internal (the instances service, at create, before the saga): the new instance's groups,
        by name in its project (default: `default`); an unknown name is a 400 naming the field."""
        request = load(BindSecurityGroupsRequest, request)
        groups = security_groups.groups_by_name(self.db, request["project"], request["security_groups"])
        security_groups.bind(self.db, request["owner"], groups)
        self._push(self._hosts_of(request["owner"]))
        return [g.name for g in groups]

    @rpc
    def place_address(self, request):
        """Internal (the instances service's live migration): the instance runs on `host`, and is
        moving to `moving_to` (both hosts get its rules while it moves), or has moved."""
        request = load(PortHostRequest, request)
        hosts = addresses.place(self.db, request["owner"], request["host"], request["moving_to"])
        self._push(hosts or [])
        return {"placed": hosts is not None}

    @rpc
    def sync_network_rules(self, actor=None):
        """Push every host's filters and floating-IP NAT now (the timer does it every
        NETWORK_SYNC_INTERVAL s): the reconcile of both."""
        if actor is not None:
            policy.enforce(load_actor(actor), "subnet:update", what="push the hosts' network rules")
        return dump(NetworkSyncSchema, {"hosts": self._push(host_rules.known_hosts(self.db))})

    @event_handler("accounts", "project_deleted")
    def on_project_deleted(self, payload):
        """The course is gone: its floating IPs go back to their pools, its security groups and its
        subnet blocks go. Every step is a delete: a redelivered event finds nothing more to do."""
        project_id = ProjectIdSchema(unknown="exclude").load(payload)["project_id"]
        hosts = floating.release_all_of(self.db, project_id) + security_groups.delete_all_of(self.db, project_id)
        for block in blocks.list_for(self.db, project_id):
            blocks.end(self.db, block["id"], self.clock())
        self._push(hosts)

    @config_timer("NETWORK_SYNC_INTERVAL", 30)
    def push_network_rules(self):
        self._push(host_rules.known_hosts(self.db))

    @rpc
    def get_address(self, owner):
        address = addresses.address_of(self.db, owner)
        return None if address is None else dump(AddressSchema, address)

    @rpc
    def list_addresses(self):
        return dump(AddressSchema, addresses.list_addresses(self.db), many=True)

    # ----- admins: subnets -----
    @rpc
    def list_subnets(self, actor):
        policy.enforce(load_actor(actor), "subnet:list", what="list subnets")
        return dump(SubnetSchema, subnets.list_subnets(self.db), many=True)

    @rpc
    def get_subnet(self, actor, subnet_id):
        policy.enforce(load_actor(actor), "subnet:get", what="look at a subnet")
        return dump(SubnetSchema, subnets.summary(self.db, subnets.get(self.db, self._id(subnet_id))))

    @rpc
    def create_subnet(self, actor, request):
        policy.enforce(load_actor(actor), "subnet:create", what="create a subnet")
        return dump(SubnetSchema, subnets.create_subnet(self.db, load(CreateSubnetRequest, request)))

    @rpc
    def delete_subnet(self, actor, subnet_id):
        """A routed subnet's network goes from its host too (best effort: a host that does not
        answer keeps it, logged; it carries no guest, and a new subnet of that name redefines it)."""
        policy.enforce(load_actor(actor), "subnet:delete", what="delete a subnet")
        deleted = subnets.delete_subnet(self.db, self._id(subnet_id))
        if deleted["mode"] == "routed":
            routed_hosts.remove_network(self.hosts, deleted)
        return dump(SubnetSchema, deleted)

    @rpc
    def reserve_address(self, actor, subnet_id, request):
        policy.enforce(load_actor(actor), "subnet:update", what="reserve an address")
        request = load(ReserveAddressRequest, request)
        return dump(SubnetSchema, subnets.reserve(self.db, self._id(subnet_id), request["ip"], request["note"]))

    @rpc
    def unreserve_address(self, actor, subnet_id, ip):
        policy.enforce(load_actor(actor), "subnet:update", what="release a reserved address")
        request = load(ReserveAddressRequest, {"ip": ip})
        return dump(SubnetSchema, subnets.unreserve(self.db, self._id(subnet_id), request["ip"]))

    @rpc
    def list_subnet_macs(self, actor, subnet_id):
        policy.enforce(load_actor(actor), "subnet:get", what="list a subnet's MACs")
        return dump(MacEntrySchema, subnets.mac_list(self.db, self._id(subnet_id)), many=True)

    # ----- courses' blocks (blocks.py) -----
    @rpc
    def reserve_subnet_block(self, actor, project_id, request):
        project_id = load(ProjectIdSchema, {"project_id": project_id})["project_id"]
        actor = load_actor(actor)
        policy.enforce(actor, "subnet_block:create", {"project_id": project_id},
                       hidden=policy.hidden_outside(actor, project_id), what="reserve a subnet block for this course")
        request = load(ReserveBlockRequest, request)
        return dump(SubnetBlockSchema, blocks.reserve(self.db, project_id, request["prefixlen"], request["subnet"],
                                                      request["ends_at"], self.clock()))

    @rpc
    def list_subnet_blocks(self, actor, project_id):
        project_id = load(ProjectIdSchema, {"project_id": project_id})["project_id"]
        actor = load_actor(actor)
        policy.enforce(actor, "subnet_block:list", {"project_id": project_id},
                       hidden=policy.hidden_outside(actor, project_id), what="list this course's subnet blocks")
        return dump(SubnetBlockSchema, blocks.list_for(self.db, project_id), many=True)

    @rpc
    def end_subnet_block(self, actor, block_id):
        block_id = load(ProjectIdSchema, {"project_id": block_id})["project_id"]
        actor = load_actor(actor)
        block = blocks.find(self.db, block_id)
        project_id = block.project_id if block is not None else None
        # Outside the course, a block that exists and one that does not look the same.
        hidden = f"no subnet block {block_id}"
        if block is None or not policy.project_role(actor, project_id) and not policy.is_admin(actor):
            raise NotFound(hidden)
        policy.enforce(actor, "subnet_block:end", {"project_id": project_id}, what="end this course's subnet block")
        described, _returned = blocks.end(self.db, block_id, self.clock())
        return dump(SubnetBlockSchema, described)

    @config_timer("BLOCK_CHECK_INTERVAL", 60)
    def end_expired_blocks(self):
        blocks.end_expired(self.db, self.clock())

    def _push(self, hosts):
        return host_rules.push(self.db, self.hosts, hosts)

    def _hosts_of(self, owner):
        return addresses.hosts_of(self.db, owner)

    def _place_if_unknown(self, owner, host):
        """Addresses allocated before hosts were recorded learn their host from the instance."""
        if not self._hosts_of(owner):
            addresses.place(self.db, owner, host)

    @staticmethod
    def _id(subnet_id):
        return load(SubnetIdSchema, {"subnet_id": subnet_id})["subnet_id"]
