"""Network service: subnets, IP and MAC allocation. Entry points only; allocation is in
addresses.py (over ipam.py's free ranges), subnets in subnets.py."""
from nameko.events import EventDispatcher
from nameko.rpc import rpc

from common import policy
from common.actors import load_actor
from common.clock import Clock
from common.errors import NotFound
from common.db import Database
from common.schemas import dump, load
from common.timers import config_timer
from services.network import addresses, blocks, subnets
from services.network.schemas import (
    AddressSchema, AllocateAddressRequest, CreateSubnetRequest, MacEntrySchema, ProjectIdSchema, ReleaseAddressRequest,
    ReserveAddressRequest, ReserveBlockRequest, SubnetBlockSchema, SubnetIdSchema, SubnetSchema)


class NetworkService:
    name = "network"

    db = Database()
    dispatch = EventDispatcher()
    clock = Clock()

    # ----- internal: the instances service allocates and releases -----
    @rpc
    def allocate_address(self, request):
        request = load(AllocateAddressRequest, request)
        address, created = addresses.allocate_address(self.db, request["owner"], request["subnet"],
                                                      request["project"])
        result = dump(AddressSchema, address)
        if created:
            self.dispatch("address_allocated", result)
        return result

    @rpc
    def release_address(self, request):
        request = load(ReleaseAddressRequest, request)
        released = addresses.release_address(self.db, request["owner"])
        if released is None:
            return {"released": False}
        self.dispatch("address_released", dump(AddressSchema, released))
        return {"released": True}

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
        policy.enforce(load_actor(actor), "subnet:delete", what="delete a subnet")
        return dump(SubnetSchema, subnets.delete_subnet(self.db, self._id(subnet_id)))

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
                       hidden=_hidden_from(actor, project_id), what="reserve a subnet block for this course")
        request = load(ReserveBlockRequest, request)
        return dump(SubnetBlockSchema, blocks.reserve(self.db, project_id, request["prefixlen"], request["subnet"],
                                                      request["ends_at"], self.clock()))

    @rpc
    def list_subnet_blocks(self, actor, project_id):
        project_id = load(ProjectIdSchema, {"project_id": project_id})["project_id"]
        actor = load_actor(actor)
        policy.enforce(actor, "subnet_block:list", {"project_id": project_id},
                       hidden=_hidden_from(actor, project_id), what="list this course's subnet blocks")
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

    @staticmethod
    def _id(subnet_id):
        return load(SubnetIdSchema, {"subnet_id": subnet_id})["subnet_id"]


def _hidden_from(actor, project_id):
    """Someone outside the course learns nothing of it: NotFound, as projects.get_project says."""
    return None if policy.project_role(actor, project_id) else f"no project {project_id}"
