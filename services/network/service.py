"""Network service: subnets, IP and MAC allocation. Entry points only; logic is in addresses.py."""
from nameko.events import EventDispatcher
from nameko.rpc import rpc

from common.db import Database
from common.schemas import dump, load
from services.network import addresses
from services.network.schemas import (
    AddressSchema, AllocateAddressRequest, CreateSubnetRequest, ReleaseAddressRequest, SubnetSchema)


class NetworkService:
    name = "network"

    db = Database()
    dispatch = EventDispatcher()

    @rpc
    def allocate_address(self, request):
        request = load(AllocateAddressRequest, request)
        address, created = addresses.allocate_address(self.db, request["owner"], request["subnet"])
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

    @rpc
    def list_subnets(self):
        return dump(SubnetSchema, addresses.list_subnets(self.db), many=True)

    @rpc
    def create_subnet(self, request):
        request = load(CreateSubnetRequest, request)
        return dump(SubnetSchema, addresses.create_subnet(self.db, **request))
