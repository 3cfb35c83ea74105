"""Subnets (the network service): admins define them, reserve addresses in them, and print the
MACs guests of a subnet can get."""
from gateway.api.registry import NETWORK, route


@route("GET", "/api/v1/subnets", tag="networks",
       summary="The subnets: CIDR, gateway, allocation range, reserved addresses, MAC policy, use (admin)",
       response=NETWORK + "SubnetSchema", many=True)
def list_subnets(rpc, actor):
    return rpc.network.list_subnets(actor)


@route("POST", "/api/v1/subnets", tag="networks",
       summary="Create a subnet (admin): its allocation range, reserved addresses, DNS servers and MAC policy",
       body=NETWORK + "CreateSubnetRequest", response=NETWORK + "SubnetSchema", status=201, errors=(409,))
def create_subnet(rpc, actor, body):
    return rpc.network.create_subnet(actor, body)


@route("GET", "/api/v1/subnets/<id:subnet_id>", tag="networks", summary="A subnet (admin)",
       response=NETWORK + "SubnetSchema")
def get_subnet(rpc, actor, subnet_id):
    return rpc.network.get_subnet(actor, subnet_id)


@route("DELETE", "/api/v1/subnets/<id:subnet_id>", tag="networks",
       summary="Delete a subnet no guest holds an address of (admin; not the default)",
       response=NETWORK + "SubnetSchema", errors=(409,))
def delete_subnet(rpc, actor, subnet_id):
    return rpc.network.delete_subnet(actor, subnet_id)


@route("POST", "/api/v1/subnets/<id:subnet_id>/reserved", tag="networks",
       summary="Reserve an address: no guest gets it from now on (admin; refused while a guest holds it)",
       body=NETWORK + "ReserveAddressRequest", response=NETWORK + "SubnetSchema", errors=(409,))
def reserve_address(rpc, actor, subnet_id, body):
    return rpc.network.reserve_address(actor, subnet_id, body)


@route("DELETE", "/api/v1/subnets/<id:subnet_id>/reserved/<ipv4:ip>", tag="networks",
       summary="Release a reserved address: guests may get it again (admin)",
       response=NETWORK + "SubnetSchema")
def unreserve_address(rpc, actor, subnet_id, ip):
    return rpc.network.unreserve_address(actor, subnet_id, ip)


@route("GET", "/api/v1/subnets/<id:subnet_id>/macs", tag="networks",
       summary="Every address guests of an `orca` subnet can get, with its MAC, for pre-approval (admin)",
       response=NETWORK + "MacEntrySchema", many=True, errors=(409,))
def list_subnet_macs(rpc, actor, subnet_id):
    return rpc.network.list_subnet_macs(actor, subnet_id)
