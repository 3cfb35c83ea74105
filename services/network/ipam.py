"""Which addresses of a subnet are free, kept as ranges (Neutron's availability ranges).

A subnet's free addresses are rows (low, high) of integers, indexed by (subnet, low). Taking
the lowest free address is one UPDATE of the lowest non-empty range (low + 1) that returns the
address: an index seek, so the last free address of a /16 comes as fast as the first, and no
allocation ever reads the allocated ones. A released address goes back as a one-address range, so
the lowest free address is reused first.

Replicas race safely: the UPDATE re-checks `low <= high` on the row it changes (PostgreSQL
re-evaluates it after waiting for the row lock; SQLite takes the write lock first), so two
allocations of one range take two different addresses, and an emptied range makes the other
look again. The range and the address row change in one transaction: a failure undoes both.
"""
import ipaddress

from sqlalchemy import and_, delete, func, insert, select, update

from common.errors import Conflict
from services.network.models import FreeRange


def to_int(ip):
    return int(ipaddress.IPv4Address(ip))


def to_ip(value):
    return str(ipaddress.IPv4Address(value))


def free_ranges(start, end, excluded):
    """[(first, last)] covering start..end (ints) without the `excluded` addresses (ints)."""
    ranges, first = [], start
    for hole in sorted(x for x in set(excluded) if start <= x <= end):
        if hole > first:
            ranges.append((first, hole - 1))
        first = hole + 1
    if first <= end:
        ranges.append((first, end))
    return ranges


def add_ranges(session, subnet_id, ranges, block_id=None):
    if ranges:
        session.execute(insert(FreeRange), [{"subnet_id": subnet_id, "block_id": block_id, "low": low, "high": high}
                                            for low, high in ranges])


def in_pool(subnet_id, block_id):
    """SQL: a free range of the subnet's shared pool (block_id None) or of that block."""
    owner = FreeRange.block_id.is_(None) if block_id is None else FreeRange.block_id == block_id
    return and_(FreeRange.subnet_id == subnet_id, owner)


def _lowest(subnet_id, block_id):
    return (select(FreeRange.id).where(in_pool(subnet_id, block_id), FreeRange.low <= FreeRange.high)
            .order_by(FreeRange.low).limit(1).scalar_subquery())


def take_lowest(session, subnet_id, block_id=None):
    """The lowest free address (an int) of the subnet's shared pool, or of its block `block_id`,
    taken in the caller's transaction; None when there is none. The caller commits (with the
    address row) or rolls back (and it is free again)."""
    for _attempt in range(100):
        row = session.execute(
            update(FreeRange).where(FreeRange.id == _lowest(subnet_id, block_id), FreeRange.low <= FreeRange.high)
            .values(low=FreeRange.low + 1).returning(FreeRange.id, FreeRange.low, FreeRange.high)
            .execution_options(synchronize_session=False)).first()
        if row is None:
            if session.scalar(select(FreeRange.id).where(in_pool(subnet_id, block_id),
                                                         FreeRange.low <= FreeRange.high).limit(1)) is None:
                return None
            continue   # another replica emptied that range between our two reads: look again
        range_id, next_first, last = row
        if next_first > last:   # that was its last address
            session.execute(delete(FreeRange).where(FreeRange.id == range_id)
                            .execution_options(synchronize_session=False))
        return next_first - 1
    raise Conflict(f"subnet {subnet_id}: every free range was taken by others 100 times in a row; try again",
                   {"subnet": ["busy"]})


def give_back(session, subnet_id, value, block_id=None):
    """`value` is free again (in the caller's transaction), in its block's pool if it has one."""
    add_ranges(session, subnet_id, [(value, value)], block_id)


def carve(session, subnet_id, value):
    """Take `value` out of the free ranges (a reserved address). False if it was not free."""
    row = session.execute(select(FreeRange.id, FreeRange.low, FreeRange.high, FreeRange.block_id).where(
        FreeRange.subnet_id == subnet_id, FreeRange.low <= value, FreeRange.high >= value)
        .with_for_update()).first()
    if row is None:
        return False
    range_id, first, last, block_id = row
    session.execute(delete(FreeRange).where(FreeRange.id == range_id))
    add_ranges(session, subnet_id, free_ranges(first, last, [value]), block_id)
    return True


def _coalesced_shared_pool(session, subnet_id):
    """The subnet's shared pool, locked, with adjacent ranges joined (released addresses and
    returned blocks come back as separate ranges): [(id, low, high)] in order."""
    rows = session.execute(select(FreeRange.id, FreeRange.low, FreeRange.high).where(
        in_pool(subnet_id, None), FreeRange.low <= FreeRange.high).order_by(FreeRange.low).with_for_update()).all()
    merged = []
    for row in rows:
        if merged and merged[-1][2] + 1 >= row.low:
            range_id, low, high = merged[-1]
            merged[-1] = (range_id, low, max(high, row.high))
            session.execute(delete(FreeRange).where(FreeRange.id == row.id))
            session.execute(update(FreeRange).where(FreeRange.id == range_id).values(high=merged[-1][2])
                            .execution_options(synchronize_session=False))
        else:
            merged.append((row.id, row.low, row.high))
    return merged


def carve_block(session, subnet_id, size, block_id):
    """The lowest aligned run of `size` addresses (a power of two) wholly free in the subnet's
    shared pool becomes block `block_id`'s: (low, high), or None when there is no such run."""
    for range_id, low, high in _coalesced_shared_pool(session, subnet_id):
        start = -(-low // size) * size   # the first multiple of size at or above low
        end = start + size - 1
        if end > high:
            continue
        session.execute(delete(FreeRange).where(FreeRange.id == range_id))
        add_ranges(session, subnet_id, [r for r in ((low, start - 1), (end + 1, high)) if r[0] <= r[1]])
        add_ranges(session, subnet_id, [(start, end)], block_id)
        return start, end
    return None


def return_block(session, subnet_id, block_id):
    """The block's free ranges go back to the shared pool."""
    session.execute(update(FreeRange).where(FreeRange.block_id == block_id).values(block_id=None)
                    .execution_options(synchronize_session=False))


def count_free(session, subnet_id, block_id=None, every_pool=True):
    """Free addresses of the subnet (all its pools), or of one pool (every_pool=False)."""
    where = [FreeRange.subnet_id == subnet_id] if every_pool else [in_pool(subnet_id, block_id)]
    return int(session.scalar(select(func.coalesce(func.sum(FreeRange.high - FreeRange.low + 1), 0)).where(
        FreeRange.low <= FreeRange.high, *where)))
