"""Per-course subnet blocks (Grid5000's g5k-subnets): a course's manager (or an admin) reserves an
aligned block of a subnet, /28 to /22, for the course's guests. From then on the course's new
guests get their addresses from the block (only from it: when it is full, a create is refused
naming the block) and nobody else gets one of them. The block is a slice of the subnet, not a
network of its own: its guests keep the subnet's gateway and prefix.

A block ends when its manager ends it or its `ends_at` passes (`end_expired`, on a timer); its
addresses go back to the subnet's shared pool once none of them is held (a block that ends while
its guests still run waits for their addresses)."""
import ipaddress
import uuid

from sqlalchemy import func, select

from common.clock import utcnow
from common.errors import CapacityExhausted, Conflict, InvalidInput, NotFound
from services.network import ipam
from services.network.addresses import course_block, named_or_default
from services.network.models import Address, Subnet, SubnetBlock

SMALLEST, LARGEST = 28, 22


def describe(session, block):
    net = ipaddress.IPv4Network(block.cidr)
    held = session.scalar(select(func.count(Address.id)).where(Address.block_id == block.id))
    return {"id": block.id, "project": block.project_id, "subnet": session.get(Subnet, block.subnet_id).name,
            "cidr": block.cidr,
            "size": net.num_addresses, "allocated": held,
            "free": ipam.count_free(session, block.subnet_id, block.id, every_pool=False),
            "created_at": block.created_at, "ends_at": block.ends_at}


def reserve(session, project_id, prefixlen, subnet_name=None, ends_at=None, now=None):
    if ends_at is not None and ends_at <= (now or utcnow()):
        raise InvalidInput("ends_at: in the past", {"ends_at": ["in the past"]})
    subnet = named_or_default(session, subnet_name)
    if course_block(session, subnet.id, project_id) is not None:
        raise Conflict(f"project {project_id} has a block of subnet {subnet.name} already",
                       {"project": ["has a block of this subnet"]})
    size = 1 << (32 - prefixlen)
    # The block's id names its ranges, so the row comes first, with a placeholder (cidr is unique:
    # a fixed one would make two concurrent reserves collide).
    block = SubnetBlock(subnet_id=subnet.id, project_id=project_id, cidr=f"pending-{uuid.uuid4().hex}",
                        ends_at=ends_at)
    session.add(block)
    session.flush()
    taken = ipam.carve_block(session, subnet.id, size, block.id)
    if taken is None:
        session.rollback()
        raise CapacityExhausted(f"subnet {subnet.name} has no free /{prefixlen} left",
                                {"prefixlen": [f"no free /{prefixlen} in {subnet.name}"]})
    block.cidr = f"{ipam.to_ip(taken[0])}/{prefixlen}"
    session.commit()
    return describe(session, block)


def find(session, block_id):
    return session.get(SubnetBlock, block_id)


def get(session, block_id):
    block = find(session, block_id)
    if block is None:
        raise NotFound(f"no subnet block {block_id}")
    return block


def list_for(session, project_id=None):
    query = select(SubnetBlock).order_by(SubnetBlock.id)
    if project_id is not None:
        query = query.where(SubnetBlock.project_id == project_id)
    return [describe(session, b) for b in session.scalars(query)]


def end(session, block_id, now=None):
    """The block ends now: returned to the shared pool if none of its addresses is held, else it
    ends as soon as they are free (ends_at set to now). Returns (description, returned)."""
    block = get(session, block_id)
    now = now or utcnow()
    if block.ends_at is None or block.ends_at > now:
        block.ends_at = now
    described = describe(session, block)
    returned = _return_if_free(session, block)
    session.commit()
    return described, returned


def end_expired(session, now=None):
    """Every block past its end whose addresses are all free goes back (a timer calls this)."""
    now = now or utcnow()
    returned = []
    for block in session.scalars(select(SubnetBlock).where(SubnetBlock.ends_at <= now)).all():
        if _return_if_free(session, block):
            returned.append(block.cidr)
        session.commit()
    return returned


def _return_if_free(session, block):
    if session.scalar(select(func.count(Address.id)).where(Address.block_id == block.id)):
        return False
    ipam.return_block(session, block.subnet_id, block.id)
    session.delete(block)
    return True

