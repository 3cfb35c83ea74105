"""Floating (public) IPs: Eucalyptus' elastic IPs.

Admins define pools (subnets of purpose `floating`, subnets.py; allocated through the same free
ranges, ipam.py: lowest free first, released ones reused). A project member allocates one for the
project (quota `floating_ips`, checked with common/quota.py's charged under the project's lock),
associates it with an instance of the same project, disassociates it, releases it. On the host
where the instance runs, traffic to the floating IP is DNATed to the instance's address and what
the instance sends out of its subnet is SNATed to it (host_rules.py pushes the rules, the agent's
netfilter.py writes them). An instance has at most one (a unique owner column). Deleting the
instance disassociates it (release_address); releasing the IP disassociates it first.
"""
from sqlalchemy import delete, func, select, update

from common import quota
from common.errors import CapacityExhausted, Conflict, NotFound
from services.network import addresses, ipam
from services.network.models import Address, FloatingIp, QuotaLock, Subnet


def find_pool(session, name=None):
    query = select(Subnet).where(Subnet.purpose == "floating")
    query = query.where(Subnet.name == name) if name else query.order_by(Subnet.id)
    pool = session.scalars(query).first()
    if pool is None:
        raise NotFound(f"no floating pool {name!r}" if name else "no floating pool is defined",
                       {"pool": ["unknown pool"]} if name else {})
    return pool


def usage(session, project_id):
    rows = session.execute(select(FloatingIp.user_id, func.count(FloatingIp.id))
                           .where(FloatingIp.project_id == project_id).group_by(FloatingIp.user_id))
    users = {user_id: {"floating_ips": int(n)} for user_id, n in rows}
    return {"project": {"floating_ips": sum(u["floating_ips"] for u in users.values())}, "users": users}


def allocate(session, project_id, user_id, limits, pool_name=None):
    """A new floating IP of the pool (default: the first pool) for the project."""
    pool = find_pool(session, pool_name)
    with quota.charged(session, QuotaLock, project_id, user_id, limits, {"floating_ips": 1}, usage):
        value = ipam.take_lowest(session, pool.id)
        if value is None:
            raise CapacityExhausted(f"floating pool {pool.name} ({pool.cidr}) has no free address",
                                    {"pool": [f"no free address in {pool.name}"]})
        floating = FloatingIp(pool_id=pool.id, ip=ipam.to_ip(value), project_id=project_id, user_id=user_id)
        session.add(floating)
    return floating


def find(session, floating_id):
    """The floating IP, or None."""
    return session.get(FloatingIp, floating_id)


def list_for(session, project_ids=None):
    """Every floating IP (None: all projects) of the projects."""
    query = select(FloatingIp).order_by(FloatingIp.id)
    if project_ids is not None:
        query = query.where(FloatingIp.project_id.in_(project_ids))
    return session.scalars(query).all()


def describe(session, floating):
    pool = session.get(Subnet, floating.pool_id)
    fixed = None
    if floating.owner:
        fixed = session.scalars(select(Address.ip).where(Address.owner == floating.owner)).first()
    return {"id": floating.id, "ip": floating.ip, "pool": pool.name if pool else None,
            "project": floating.project_id, "user_id": floating.user_id, "instance": floating.owner,
            "fixed_ip": fixed, "allocated_at": floating.allocated_at}


def associate(session, floating, owner):
    """Associate with the instance whose address `owner` holds; returns the hosts to push. Again
    with the same instance: nothing changes (idempotent)."""
    session.refresh(floating)   # its association as committed now (sessions keep objects across commits)
    if floating.owner == owner:
        return addresses.hosts_of(session, owner)
    if floating.owner is not None:
        raise Conflict(f"floating IP {floating.ip} is associated with instance {floating.owner}: disassociate it first",
                       {"instance": ["the floating IP is associated with another instance"]})
    address = session.scalars(select(Address).where(Address.owner == owner)).first()
    if address is None:
        raise Conflict(f"instance {owner} has no address yet", {"instance": ["has no address yet"]})
    other = session.scalars(select(FloatingIp.ip).where(FloatingIp.owner == owner)).first()
    if other is not None:
        raise Conflict(f"instance {owner} has floating IP {other} already", {"instance": ["has a floating IP already"]})
    taken = session.execute(update(FloatingIp).where(FloatingIp.id == floating.id, FloatingIp.owner.is_(None))
                            .values(owner=owner)).rowcount
    session.commit()
    if not taken:   # a concurrent associate won: say what it did
        session.refresh(floating)
        if floating.owner != owner:
            raise Conflict(f"floating IP {floating.ip} was associated with instance {floating.owner} meanwhile",
                           {"instance": ["the floating IP is associated with another instance"]})
    return addresses.hosts_of(session, owner)


def disassociate(session, floating):
    """Returns the hosts to push (none when it was not associated: idempotent)."""
    session.refresh(floating)
    owner = floating.owner
    if owner is None:
        return []
    hosts = addresses.hosts_of(session, owner)
    session.execute(update(FloatingIp).where(FloatingIp.id == floating.id).values(owner=None))
    session.commit()
    return hosts


def disassociate_owner(session, owner):
    """The instance is going: its floating IP (if any) stays the project's, unassociated. Does not
    commit (release_address's transaction)."""
    session.execute(update(FloatingIp).where(FloatingIp.owner == owner).values(owner=None))


def release(session, floating):
    """Back to the pool (disassociated first). Returns (description, hosts to push); releasing one
    that is gone already is NotFound for the caller to treat as done."""
    session.refresh(floating)
    described = describe(session, floating)
    hosts = addresses.hosts_of(session, floating.owner) if floating.owner else []
    if session.execute(delete(FloatingIp).where(FloatingIp.id == floating.id)).rowcount == 1:
        ipam.give_back(session, floating.pool_id, ipam.to_int(floating.ip))
    session.commit()
    return described, hosts


def release_all_of(session, project_id):
    """The course is gone: every floating IP it held goes back to its pool. Returns the hosts to
    push (those of addresses still associated: none once its instances are gone). Idempotent."""
    hosts = set()
    for floating in list_for(session, [project_id]):
        hosts |= set(release(session, floating)[1])
    return sorted(hosts)
