"""IP and MAC allocation. No duplicates, ever: (subnet, ip), mac and owner are unique in the
database, and a conflicting insert from another replica is retried a bounded number of times."""
import ipaddress
import random

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from common.errors import CapacityExhausted, Conflict, NotFound
from services.network.models import Address, Subnet

ALLOCATION_ATTEMPTS = 8


def mac_for_ip(ip):
    """Orca's scheme: AA:00 followed by the IPv4 bytes. 0xAA is unicast and locally administered."""
    return "aa:00:" + ":".join(f"{byte:02x}" for byte in ipaddress.IPv4Address(ip).packed)


def describe(address, subnet):
    net = ipaddress.IPv4Network(subnet.cidr)
    return {
        "owner": address.owner, "subnet": subnet.name, "cidr": subnet.cidr, "ip": address.ip,
        "mac": address.mac, "gateway": subnet.gateway, "prefixlen": net.prefixlen,
        "allocated_at": address.allocated_at,
    }


def find_subnet(session, name=None):
    query = select(Subnet).where(Subnet.name == name) if name else select(Subnet).where(Subnet.is_default)
    subnet = session.scalars(query).first()
    if subnet is None:
        raise NotFound(f"no subnet {name!r}" if name else "no default subnet",
                       {"subnet": ["unknown subnet"]} if name else {})
    return subnet


def pick_free_ip(subnet, used, attempt=0):
    """The lowest free address on the first attempt (released IPs are reused first); after a
    conflict, a random one among the lowest few, so racing replicas stop colliding."""
    net = ipaddress.IPv4Network(subnet.cidr)
    reserved = used | {subnet.gateway}
    spread = 1 if attempt == 0 else 4 * attempt
    candidates = []
    for host in net.hosts():
        candidate = str(host)
        if candidate not in reserved:
            candidates.append(candidate)
            if len(candidates) >= spread:
                break
    return random.choice(candidates) if candidates else None


def address_of(session, owner):
    address = session.scalars(select(Address).where(Address.owner == owner)).first()
    if address is None:
        return None
    return describe(address, session.get(Subnet, address.subnet_id))


def list_addresses(session):
    """Every allocated address (reconcile releases those whose owner is gone)."""
    subnets = {s.id: s for s in session.scalars(select(Subnet))}
    return [describe(a, subnets[a.subnet_id]) for a in session.scalars(select(Address).order_by(Address.id))]


def allocate_address(session, owner, subnet_name=None):
    """Give `owner` an address; asking twice for the same owner returns the same address."""
    for attempt in range(ALLOCATION_ATTEMPTS):
        existing = address_of(session, owner)
        if existing is not None:
            return existing, False
        subnet = find_subnet(session, subnet_name)
        used = set(session.scalars(select(Address.ip).where(Address.subnet_id == subnet.id)))
        ip = pick_free_ip(subnet, used, attempt)
        if ip is None:
            raise CapacityExhausted(f"subnet {subnet.name} ({subnet.cidr}) has no free address")
        address = Address(subnet_id=subnet.id, ip=ip, mac=mac_for_ip(ip), owner=owner)
        session.add(address)
        try:
            session.commit()
        except IntegrityError:
            # Another replica took this IP (or allocated for this owner) first: look again.
            session.rollback()
            continue
        return describe(address, subnet), True
    raise Conflict(f"could not allocate an address for {owner} after {ALLOCATION_ATTEMPTS} attempts")


def release_address(session, owner):
    """Free `owner`'s address; releasing what is already free is not an error (at-least-once RPC)."""
    address = session.scalars(select(Address).where(Address.owner == owner)).first()
    if address is None:
        return None
    released = describe(address, session.get(Subnet, address.subnet_id))
    session.delete(address)
    session.commit()
    return released


def create_subnet(session, name, cidr, is_default=False):
    net = ipaddress.IPv4Network(cidr)
    for other in session.scalars(select(Subnet)):
        if net.overlaps(ipaddress.IPv4Network(other.cidr)):
            raise Conflict(f"{cidr} overlaps subnet {other.name} ({other.cidr})", {"cidr": ["overlaps"]})
    if session.scalars(select(Subnet).where(Subnet.name == name)).first():
        raise Conflict(f"subnet {name} exists", {"name": ["already exists"]})
    if is_default:
        for other in session.scalars(select(Subnet).where(Subnet.is_default)):
            other.is_default = False
    subnet = Subnet(name=name, cidr=str(net), gateway=str(next(net.hosts())), is_default=is_default)
    session.add(subnet)
    session.commit()
    return subnet_summary(session, subnet)


def subnet_summary(session, subnet):
    allocated = session.scalar(select(func.count(Address.id)).where(Address.subnet_id == subnet.id))
    net = ipaddress.IPv4Network(subnet.cidr)
    return {"id": subnet.id, "name": subnet.name, "cidr": subnet.cidr, "gateway": subnet.gateway,
            "is_default": subnet.is_default, "allocated": allocated,
            "capacity": max(net.num_addresses - 3, 0)}


def list_subnets(session):
    return [subnet_summary(session, s) for s in session.scalars(select(Subnet).order_by(Subnet.id))]
