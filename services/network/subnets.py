"""Subnets, owned by admins: CIDR, gateway, DNS servers, the allocation range guests get addresses
from, reserved addresses no guest gets, the MAC policy and the mode (bridged, or routed to one host). Creating one fills its free ranges
(ipam.py); reserving an address takes it out of them; a subnet is deleted only when no address of
it is allocated."""
import ipaddress

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from common.errors import Conflict, InvalidInput, NotFound
from services.network import ipam
from services.network.addresses import mac_for_ip
from services.network.models import Address, FloatingIp, FreeRange, ReservedAddress, Subnet

MAX_MAC_LIST = 1 << 16   # a /16's worth: larger lists are no list an admin approves by hand


def _bad(field, message):
    return InvalidInput(f"{field}: {message}", {field: [message]})


def _address_in(net, value, field):
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        raise _bad(field, "not an IPv4 address") from None
    if address not in net or address in (net.network_address, net.broadcast_address):
        raise _bad(field, f"not a host address of {net}")
    return address


def create_subnet(session, request):
    """Orca started guests at .20 and kept .1-.19 for staff: by default the allocation range is
    every host address (the gateway, the first, excluded), and admins set a later start."""
    net = ipaddress.IPv4Network(request["cidr"])
    hosts_first, hosts_last = net.network_address + 1, net.broadcast_address - 1
    purpose = request.get("purpose", "guests")
    # A floating pool has no gateway (its addresses are NATed on the hosts): every address counts.
    gateway = (_address_in(net, request.get("gateway") or str(hosts_first), "gateway")
               if purpose == "guests" else None)
    start = _address_in(net, request.get("allocation_start") or str(hosts_first), "allocation_start")
    end = _address_in(net, request.get("allocation_end") or str(hosts_last), "allocation_end")
    if start > end:
        raise _bad("allocation_end", "before allocation_start")
    reserved = [_address_in(net, ip, "reserved") for ip in request.get("reserved", [])]
    for other in session.scalars(select(Subnet)):
        if net.overlaps(ipaddress.IPv4Network(other.cidr)):
            raise Conflict(f"{net} overlaps subnet {other.name} ({other.cidr})", {"cidr": ["overlaps"]})
    if session.scalars(select(Subnet).where(Subnet.name == request["name"])).first():
        raise Conflict(f"subnet {request['name']} exists", {"name": ["already exists"]})
    if request.get("is_default"):
        for other in session.scalars(select(Subnet).where(Subnet.is_default)):
            other.is_default = False
    subnet = Subnet(name=request["name"], cidr=str(net), gateway=str(gateway or ""), purpose=purpose,
                    is_default=bool(request.get("is_default")) and purpose == "guests",
                    allocation_start=str(start), allocation_end=str(end),
                    dns_servers=",".join(request.get("dns_servers", [])), mac_policy=request.get("mac_policy", "orca"),
                    mode=request.get("mode", "bridged"), host=request.get("host"))
    session.add(subnet)
    try:
        session.flush()
    except IntegrityError:   # a concurrent create of the same name or CIDR
        session.rollback()
        raise Conflict(f"subnet {request['name']} or {net} exists", {"name": ["already exists"]}) from None
    for ip in sorted(set(reserved)):
        session.add(ReservedAddress(subnet_id=subnet.id, ip=str(ip)))
    excluded = ([int(gateway)] if gateway is not None else []) + [int(ip) for ip in reserved]
    ipam.add_ranges(session, subnet.id, ipam.free_ranges(int(start), int(end), excluded))
    session.commit()
    return summary(session, subnet)


def get(session, subnet_id, purpose="guests"):
    subnet = session.get(Subnet, subnet_id)
    if subnet is None or subnet.purpose != purpose:
        raise NotFound(f"no {'subnet' if purpose == 'guests' else 'floating pool'} {subnet_id}")
    return subnet


def summary(session, subnet):
    if subnet.purpose == "guests":
        allocated = session.scalar(select(func.count(Address.id)).where(Address.subnet_id == subnet.id))
    else:
        allocated = session.scalar(select(func.count(FloatingIp.id)).where(FloatingIp.pool_id == subnet.id))
    free = ipam.count_free(session, subnet.id)
    reserved = sorted(session.scalars(select(ReservedAddress.ip).where(ReservedAddress.subnet_id == subnet.id)),
                      key=ipaddress.IPv4Address)
    return {"id": subnet.id, "name": subnet.name, "cidr": subnet.cidr, "gateway": subnet.gateway,
            "is_default": subnet.is_default, "allocation_start": subnet.allocation_start,
            "allocation_end": subnet.allocation_end, "mac_policy": subnet.mac_policy,
            "mode": subnet.mode, "host": subnet.host,
            "dns_servers": [d for d in (subnet.dns_servers or "").split(",") if d],
            "reserved": reserved, "allocated": allocated, "free": free,
            # What guests can get at most: the allocation range without the gateway and reserved.
            "capacity": allocated + free}


def list_subnets(session, purpose="guests"):
    return [summary(session, s) for s in session.scalars(select(Subnet).where(Subnet.purpose == purpose)
                                                         .order_by(Subnet.id))]


def reserve(session, subnet_id, ip, note=""):
    """No guest gets `ip` from now on. Refused while a guest holds it. Idempotent."""
    subnet = get(session, subnet_id)
    address = _address_in(ipaddress.IPv4Network(subnet.cidr), ip, "ip")
    if session.scalars(select(ReservedAddress).where(ReservedAddress.subnet_id == subnet.id,
                                                     ReservedAddress.ip == str(address))).first():
        return summary(session, subnet)
    holder = session.scalars(select(Address.owner).where(Address.subnet_id == subnet.id,
                                                         Address.ip == str(address))).first()
    if holder is not None:
        raise Conflict(f"{address} is allocated to {holder}", {"ip": ["allocated"]})
    session.add(ReservedAddress(subnet_id=subnet.id, ip=str(address), note=note))
    ipam.carve(session, subnet.id, int(address))
    try:
        session.commit()
    except IntegrityError:   # reserved concurrently: the same outcome
        session.rollback()
    return summary(session, subnet)


def unreserve(session, subnet_id, ip):
    """Guests may get `ip` again (if it is in the allocation range and not the gateway)."""
    subnet = get(session, subnet_id)
    address = _address_in(ipaddress.IPv4Network(subnet.cidr), ip, "ip")
    gone = session.execute(delete(ReservedAddress).where(ReservedAddress.subnet_id == subnet.id,
                                                         ReservedAddress.ip == str(address))).rowcount
    if gone and str(address) != subnet.gateway and (
            ipaddress.IPv4Address(subnet.allocation_start) <= address <= ipaddress.IPv4Address(subnet.allocation_end)):
        ipam.give_back(session, subnet.id, int(address))
    session.commit()
    return summary(session, subnet)


def delete_subnet(session, subnet_id, purpose="guests"):
    subnet = get(session, subnet_id, purpose)
    in_use = session.scalar(select(func.count(Address.id)).where(Address.subnet_id == subnet.id)) + \
        session.scalar(select(func.count(FloatingIp.id)).where(FloatingIp.pool_id == subnet.id))
    if in_use:
        raise Conflict(f"subnet {subnet.name} has {in_use} allocated addresses", {"subnet": ["in use"]})
    if subnet.is_default:
        raise Conflict(f"subnet {subnet.name} is the default", {"subnet": ["the default subnet"]})
    described = summary(session, subnet)
    session.execute(delete(FreeRange).where(FreeRange.subnet_id == subnet.id))
    session.execute(delete(ReservedAddress).where(ReservedAddress.subnet_id == subnet.id))
    session.delete(subnet)
    session.commit()
    return described


def mac_list(session, subnet_id):
    """[(ip, mac)] of every address guests may get, for admins to pre-approve (Orca's policy; a
    `random` subnet has no such list)."""
    subnet = get(session, subnet_id)
    if subnet.mac_policy != "orca":
        raise Conflict(f"subnet {subnet.name} gives random MACs: there is no list to approve",
                       {"subnet": ["mac_policy is random"]})
    start, end = (int(ipaddress.IPv4Address(subnet.allocation_start)),
                  int(ipaddress.IPv4Address(subnet.allocation_end)))
    if end - start + 1 > MAX_MAC_LIST:
        raise Conflict(f"subnet {subnet.name} has more than {MAX_MAC_LIST} addresses", {"subnet": ["too large"]})
    excluded = {int(ipaddress.IPv4Address(subnet.gateway))} | {
        int(ipaddress.IPv4Address(ip)) for ip in session.scalars(
            select(ReservedAddress.ip).where(ReservedAddress.subnet_id == subnet.id))}
    return [{"ip": ipam.to_ip(v), "mac": mac_for_ip(ipam.to_ip(v))}
            for v in range(start, end + 1) if v not in excluded]
