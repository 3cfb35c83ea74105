"""IP and MAC allocation. No duplicates, ever: (subnet, ip), mac and owner are unique in the
database; the address comes from the subnet's free ranges (ipam.py: the lowest free one, taken
by one indexed UPDATE, so replicas never pick the same and a /16 is never scanned)."""
import ipaddress
import secrets

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from common.errors import CapacityExhausted, Conflict, NotFound
from services.network import ipam
from common.clock import utcnow
from services.network.models import Address, Subnet, SubnetBlock

ALLOCATION_ATTEMPTS = 8
MAC_POLICIES = ("orca", "random")


def mac_for_ip(ip):
    """Orca's scheme: AA:00 followed by the IPv4 bytes. 0xAA is unicast and locally administered."""
    return "aa:00:" + ":".join(f"{byte:02x}" for byte in ipaddress.IPv4Address(ip).packed)


def random_mac():
    """Locally administered (bit 1 of the first octet) unicast (bit 0 clear); never Orca's aa:00
    prefix, so the two kinds cannot collide."""
    first = (secrets.randbits(8) | 0x02) & 0xFE
    second = secrets.randbits(8)
    if (first, second) == (0xAA, 0x00):
        second = 0x01
    return ":".join(f"{b:02x}" for b in [first, second] + [secrets.randbits(8) for _ in range(4)])


def mac_for(subnet, ip):
    return mac_for_ip(ip) if subnet.mac_policy == "orca" else random_mac()


def routed_network_name(subnet_name):
    """The libvirt network a routed subnet's guests join on its host (the host agent makes it by
    this name when the first guest comes: routed.py)."""
    return f"lcr-{subnet_name}"


def describe(address, subnet):
    net = ipaddress.IPv4Network(subnet.cidr)
    return {
        "owner": address.owner, "subnet": subnet.name, "cidr": subnet.cidr, "ip": address.ip,
        "mac": address.mac, "gateway": subnet.gateway, "prefixlen": net.prefixlen,
        "dns_servers": [d for d in (subnet.dns_servers or "").split(",") if d],
        "allocated_at": address.allocated_at, "mode": subnet.mode,
        "network": routed_network_name(subnet.name) if subnet.mode == "routed" else None,
    }


def find_subnet(session, name=None, host=None):
    """The subnet a new address of an instance on `host` comes from: the one named (a routed one
    only when it is routed to `host`), else the first routed subnet of `host` (its guests are
    routed), else the default subnet. A routed subnet of another host is never chosen."""
    if name:
        subnet = named_or_default(session, name)
        if subnet.mode == "routed" and subnet.host != host:
            raise Conflict(f"subnet {name} is routed to host {subnet.host}, not to {host}",
                           {"subnet": [f"routed to host {subnet.host}"]})
        return subnet
    if host is not None:
        routed = session.scalars(select(Subnet).where(Subnet.purpose == "guests", Subnet.mode == "routed",
                                                      Subnet.host == host).order_by(Subnet.id)).first()
        if routed is not None:
            return routed
    return named_or_default(session)


def named_or_default(session, name=None):
    query = select(Subnet).where(Subnet.purpose == "guests")
    query = query.where(Subnet.name == name) if name else query.where(Subnet.is_default)
    subnet = session.scalars(query).first()
    if subnet is None:
        raise NotFound(f"no subnet {name!r}" if name else "no default subnet",
                       {"subnet": ["unknown subnet"]} if name else {})
    return subnet


def address_of(session, owner):
    address = session.scalars(select(Address).where(Address.owner == owner)).first()
    if address is None:
        return None
    return describe(address, session.get(Subnet, address.subnet_id))


def list_addresses(session):
    """Every allocated address (reconcile releases those whose owner is gone)."""
    subnets = {s.id: s for s in session.scalars(select(Subnet))}
    return [describe(a, subnets[a.subnet_id]) for a in session.scalars(select(Address).order_by(Address.id))]


def course_block(session, subnet_id, project_id):
    """The project's block of the subnet (blocks.py), if it has one."""
    if project_id is None:
        return None
    return session.scalars(select(SubnetBlock).where(SubnetBlock.subnet_id == subnet_id,
                                                     SubnetBlock.project_id == project_id)).first()


def hosts_of(session, owner):
    """The hosts whose rules cover the address `owner` holds (its host, and one it moves to)."""
    row = session.execute(select(Address.host, Address.moving_to).where(Address.owner == owner)).first()
    return sorted(h for h in (row or ()) if h)


def place(session, owner, host, moving_to=None):
    """Record where the address's instance runs (and where it is migrating to). Returns the hosts
    whose rules change (before and after), or None when `owner` holds no address."""
    address = session.scalars(select(Address).where(Address.owner == owner)).first()
    if address is None:
        return None
    subnet = session.get(Subnet, address.subnet_id)
    strays = {host, moving_to} - {None, subnet.host}
    if subnet.mode == "routed" and strays:
        # Only its host's upstream routes the subnet: the guest would be unreachable elsewhere.
        session.rollback()
        raise Conflict(f"{address.ip} is on subnet {subnet.name}, routed to host {subnet.host}: "
                       f"its instance cannot run on {', '.join(sorted(strays))}",
                       {"host": [f"the instance's subnet is routed to {subnet.host}"]})
    before = {address.host, address.moving_to}
    address.host, address.moving_to = host, moving_to
    session.commit()
    return sorted(h for h in before | {host, moving_to} if h)


def allocate_address(session, owner, subnet_name=None, project_id=None, host=None):
    """Give `owner` an address: from its project's block of the subnet while the block has not
    ended (and only from there), else from the subnet's shared pool. Asking twice for the same
    owner returns the same address."""
    for _attempt in range(ALLOCATION_ATTEMPTS):
        existing = address_of(session, owner)
        if existing is not None:
            if host is not None:
                place(session, owner, host)   # a retry after the instance was placed elsewhere
            return existing, False
        subnet = find_subnet(session, subnet_name, host)
        block = course_block(session, subnet.id, project_id)
        if block is not None and block.ends_at is not None and block.ends_at <= utcnow():
            block = None   # ended: it waits for its addresses to go back; new guests use the shared pool
        block_id = block.id if block is not None else None
        pool = f"block {block.cidr} of project {project_id}" if block is not None else f"subnet {subnet.name}"
        session.commit()   # the allocation below is its own transaction, started by its write
        value = ipam.take_lowest(session, subnet.id, block_id)
        if value is None:
            session.rollback()
            raise CapacityExhausted(f"{pool} ({subnet.cidr}) has no free address",
                                    {"subnet": [f"no free address in {pool}"]})
        ip = ipam.to_ip(value)
        address = Address(subnet_id=subnet.id, ip=ip, mac=mac_for(subnet, ip), owner=owner, block_id=block_id,
                          host=host)
        session.add(address)
        try:
            session.commit()
        except IntegrityError:
            # The owner got an address meanwhile (a redelivered request on another replica), or a
            # random MAC collided: the address goes back with the rollback; look again.
            session.rollback()
            continue
        return describe(address, subnet), True
    raise Conflict(f"could not allocate an address for {owner} after {ALLOCATION_ATTEMPTS} attempts")


def release_address(session, owner):
    """Free `owner`'s address; releasing what is already free is not an error (at-least-once RPC)."""
    address = session.scalars(select(Address).where(Address.owner == owner)).first()
    if address is None:
        return None
    subnet = session.get(Subnet, address.subnet_id)
    released = describe(address, subnet)
    session.expunge(address)
    # Only the release that deletes the row gives the address back (a redelivered release racing
    # on another replica finds nothing to delete), so it is never free twice.
    if session.execute(delete(Address).where(Address.id == address.id)).rowcount == 1:
        # Back to its block (if the block still exists: one that ended went back whole already).
        block_id = address.block_id if address.block_id and session.get(SubnetBlock, address.block_id) else None
        ipam.give_back(session, subnet.id, ipam.to_int(address.ip), block_id)
    session.commit()
    return released
