"""Subnets (the network service): admins define them, reserve addresses in them, and print the
MACs guests of a subnet can get."""
from gateway.api.registry import NETWORK, route


@route("GET", "/api/v1/subnets", tag="networks",
       summary="The subnets: CIDR, gateway, allocation range, reserved addresses, MAC policy, mode (bridged, "
               "or routed to one host), use (admin)",
       response=NETWORK + "SubnetSchema", many=True)
def list_subnets(rpc, actor):
    return rpc.network.list_subnets(actor)


@route("POST", "/api/v1/subnets", tag="networks",
       summary="Create a subnet (admin): its allocation range, reserved addresses, DNS servers, MAC policy and "
               "mode (`routed` needs `host`: the host its upstream routes the subnet to)",
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


@route("POST", "/api/v1/projects/<id:project_id>/subnet-blocks", tag="networks",
       summary="Reserve a block of a subnet (/28 to /22) for a course's guests: they get addresses only from it, "
               "nobody else does (its managers, admins)",
       body=NETWORK + "ReserveBlockRequest", response=NETWORK + "SubnetBlockSchema", status=201, errors=(409, 503))
def reserve_subnet_block(rpc, actor, project_id, body):
    return rpc.network.reserve_subnet_block(actor, project_id, body)


@route("GET", "/api/v1/projects/<id:project_id>/subnet-blocks", tag="networks",
       summary="A course's subnet blocks and how many of their addresses its guests hold (its members)",
       response=NETWORK + "SubnetBlockSchema", many=True)
def list_subnet_blocks(rpc, actor, project_id):
    return rpc.network.list_subnet_blocks(actor, project_id)


@route("DELETE", "/api/v1/subnet-blocks/<id:block_id>", tag="networks",
       summary="End a course's subnet block: its addresses go back to the subnet once its guests' are free "
               "(its managers, admins)",
       response=NETWORK + "SubnetBlockSchema")
def end_subnet_block(rpc, actor, block_id):
    return rpc.network.end_subnet_block(actor, block_id)
