"""What each host must filter and NAT, computed from the records, and pushed whole.

A host's rule set (the host agent's NetworkRulesRequest) covers every address whose instance runs
there (Address.host) or is migrating there (Address.moving_to): its security groups' rules, a
remote group expanded to its members' current addresses, and its floating IP's NAT. The agent
replaces its whole table with it (hostagent/netfilter.py), so a push is idempotent, a lost push is
made good by the next one, and nothing unowned survives one: every change pushes the hosts it
touches at once, and a timer (NETWORK_SYNC_INTERVAL) pushes every known host, which is the
reconcile of filters and floating-IP rules (a host restarted with an empty table gets its rules
back, a rule whose record went is removed).

An address in no group (allocated before security groups existed) is not filtered."""
import ipaddress
import logging

from sqlalchemy import or_, select

from services.network.models import Address, FloatingIp, PortGroup, SecurityGroupRule, Subnet

log = logging.getLogger(__name__)


def ruleset(session, host):
    addresses = session.scalars(select(Address).where(or_(Address.host == host, Address.moving_to == host))
                                .order_by(Address.id)).all()
    owners = [a.owner for a in addresses]
    groups_of = {}
    for owner, group_id in session.execute(select(PortGroup.owner, PortGroup.group_id)
                                           .where(PortGroup.owner.in_(owners))):
        groups_of.setdefault(owner, []).append(group_id)
    group_ids = {g for groups in groups_of.values() for g in groups}
    rules = session.scalars(select(SecurityGroupRule).where(SecurityGroupRule.group_id.in_(group_ids))
                            .order_by(SecurityGroupRule.id)).all()
    members = _members(session, {r.remote_group_id for r in rules if r.remote_group_id is not None})
    by_group = {}
    for rule in rules:
        by_group.setdefault(rule.group_id, []).append(rule)
    ports = []
    for address in addresses:
        if address.owner not in groups_of:
            continue
        port = {"ip": address.ip, "ingress": [], "egress": []}
        for group_id in sorted(groups_of[address.owner]):
            for rule in by_group.get(group_id, []):
                peers = [rule.cidr] if rule.cidr else members.get(rule.remote_group_id, [])
                port[rule.direction].append({"protocol": rule.protocol, "port_min": rule.port_min,
                                             "port_max": rule.port_max, "peers": peers})
        ports.append(port)
    subnets = {s.id: s.cidr for s in session.scalars(select(Subnet))}
    fixed = {a.owner: a for a in addresses}
    floating = [{"floating_ip": f.ip, "fixed_ip": fixed[f.owner].ip, "subnet": subnets[fixed[f.owner].subnet_id]}
                for f in session.scalars(select(FloatingIp).where(FloatingIp.owner.in_(owners))
                                         .order_by(FloatingIp.id))]
    return {"ports": ports, "floating": floating}


def _members(session, group_ids):
    """{group id: [member address /32]} of the groups that rules name as their peer."""
    members = {}
    if not group_ids:
        return members
    rows = session.execute(select(PortGroup.group_id, Address.ip).join(Address, Address.owner == PortGroup.owner)
                           .where(PortGroup.group_id.in_(group_ids)).order_by(Address.id))
    for group_id, ip in rows:
        members.setdefault(group_id, []).append(str(ipaddress.IPv4Network(ip)))
    return members


def known_hosts(session):
    """Hosts that hold or are getting an address (the timer's push covers them all)."""
    hosts = set(session.scalars(select(Address.host).where(Address.host.is_not(None))))
    hosts |= set(session.scalars(select(Address.moving_to).where(Address.moving_to.is_not(None))))
    return sorted(hosts)


def push(session, hosts_rpc, hosts):
    """Push each host's rule set. A host that cannot be reached now is left for the next push
    (logged); the others still get theirs. Returns {host: True/False}."""
    done = {}
    for host in sorted({h for h in hosts if h}):
        wanted = ruleset(session, host)
        session.rollback()   # nothing is held open while the host answers
        try:
            hosts_rpc(host).apply_network_rules(wanted)
            done[host] = True
        except Exception as exc:  # noqa: BLE001  (the timer's next push makes it good)
            log.warning("network rules of host %s not applied: %s", host, exc)
            done[host] = False
    return done
