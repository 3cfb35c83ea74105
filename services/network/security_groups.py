"""Security groups (Eucalyptus' and EC2's; OAR F.u.8's ACLs): per project, sets of allowed traffic.

A rule allows `ingress` (to the instance) from a peer or `egress` (from it) to a peer; the peer is
a CIDR or the members of a group of the same project (`remote_group`: whatever addresses its
members hold at the time, kept up to date on the hosts). Protocols tcp and udp take a port range,
icmp and any none. Everything a rule does not allow is dropped; replies to allowed traffic pass
(connection tracking). An instance is in one or more groups of its project; with none named it is
in the project's `default` group, made on first use: SSH in from anywhere, everything out. Two
courses' default groups allow nothing between their instances.

Changes are applied by host_rules.py, which pushes each affected host's whole rule set."""
import ipaddress

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from common.errors import Conflict, InvalidInput
from services.network.models import Address, PortGroup, SecurityGroup, SecurityGroupRule

DEFAULT = "default"
DEFAULT_RULES = (
    dict(direction="ingress", protocol="tcp", port_min=22, port_max=22, cidr="0.0.0.0/0"),
    dict(direction="egress", protocol="any", port_min=None, port_max=None, cidr="0.0.0.0/0"),
)
PORTED = ("tcp", "udp")


def _bad(field, message):
    return InvalidInput(f"{field}: {message}", {field: [message]})


def ensure_default(session, project_id):
    """The project's `default` group, made (with its rules) if missing. Safe under replicas."""
    group = _named(session, project_id, DEFAULT)
    if group is not None:
        return group
    group = SecurityGroup(project_id=project_id, name=DEFAULT, description="SSH in, everything out")
    session.add(group)
    try:
        session.flush()
        for rule in DEFAULT_RULES:
            session.add(SecurityGroupRule(group_id=group.id, **rule))
        session.commit()
    except IntegrityError:   # another replica made it first
        session.rollback()
        group = _named(session, project_id, DEFAULT)
    return group


def _named(session, project_id, name):
    return session.scalars(select(SecurityGroup).where(SecurityGroup.project_id == project_id,
                                                       SecurityGroup.name == name)).first()


def get(session, group_id):
    """The group, or None."""
    return session.get(SecurityGroup, group_id)



def list_for(session, project_id):
    ensure_default(session, project_id)
    groups = session.scalars(select(SecurityGroup).where(SecurityGroup.project_id == project_id)
                             .order_by(SecurityGroup.id))
    return [describe(session, g) for g in groups]


def describe(session, group):
    rules = session.scalars(select(SecurityGroupRule).where(SecurityGroupRule.group_id == group.id)
                            .order_by(SecurityGroupRule.id))
    names = {}
    described = []
    for rule in rules:
        remote = None
        if rule.remote_group_id is not None:
            if rule.remote_group_id not in names:
                other = session.get(SecurityGroup, rule.remote_group_id)
                names[rule.remote_group_id] = other.name if other is not None else None
            remote = names[rule.remote_group_id]
        described.append({"id": rule.id, "direction": rule.direction, "protocol": rule.protocol,
                          "port_min": rule.port_min, "port_max": rule.port_max, "cidr": rule.cidr,
                          "remote_group": remote, "remote_group_id": rule.remote_group_id})
    members = session.scalars(select(PortGroup.owner).where(PortGroup.group_id == group.id)).all()
    return {"id": group.id, "project": group.project_id, "name": group.name,
            "description": group.description, "rules": described, "instances": sorted(members),
            "created_at": group.created_at}


def create(session, project_id, name, description=""):
    ensure_default(session, project_id)
    if _named(session, project_id, name) is not None:
        raise Conflict(f"security group {name} exists in this project", {"name": ["already exists"]})
    group = SecurityGroup(project_id=project_id, name=name, description=description or "")
    session.add(group)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"security group {name} exists in this project", {"name": ["already exists"]}) from None
    return group


def delete_group(session, group):
    """Refused for `default`, for a group an instance is in, and for one another rule names."""
    if group.name == DEFAULT:
        raise Conflict("the default group cannot be deleted", {"group": ["the default group"]})
    if session.scalars(select(PortGroup.owner).where(PortGroup.group_id == group.id)).first():
        raise Conflict(f"security group {group.name} has instances", {"group": ["in use by instances"]})
    if session.scalars(select(SecurityGroupRule.id).where(SecurityGroupRule.remote_group_id == group.id,
                                                          SecurityGroupRule.group_id != group.id)).first():
        raise Conflict(f"a rule of another group names {group.name}", {"group": ["named by another group's rule"]})
    described = describe(session, group)
    session.execute(delete(SecurityGroupRule).where(SecurityGroupRule.group_id == group.id))
    session.delete(group)
    session.commit()
    return described


def normalise_rule(session, group, request):
    """The rule as stored, checked: ports only (and both ends) for tcp/udp, in order; exactly one of
    cidr and remote_group (a group of the same project, by name or id)."""
    protocol = request["protocol"]
    port_min, port_max = request.get("port_min"), request.get("port_max")
    if protocol in PORTED:
        if port_min is None:
            raise _bad("port_min", f"required for {protocol}")
        port_max = port_min if port_max is None else port_max
        if port_max < port_min:
            raise _bad("port_max", "below port_min")
    elif port_min is not None or port_max is not None:
        raise _bad("port_min", f"{protocol} has no ports")
    cidr, remote = request.get("cidr"), request.get("remote_group")
    if (cidr is None) == (remote is None):
        raise _bad("cidr", "give either cidr or remote_group")
    remote_id = None
    if cidr is not None:
        try:
            cidr = str(ipaddress.IPv4Network(cidr, strict=False))
        except ValueError:
            raise _bad("cidr", "not an IPv4 network") from None
    else:
        other = _named(session, group.project_id, remote)
        if other is None:
            raise _bad("remote_group", f"no security group {remote} in this project")
        remote_id = other.id
    return dict(direction=request["direction"], protocol=protocol, port_min=port_min, port_max=port_max,
                cidr=cidr, remote_group_id=remote_id)


def add_rule(session, group, request):
    """Adds the rule; adding one the group has already returns that one (idempotent)."""
    rule = normalise_rule(session, group, request)
    existing = session.scalars(select(SecurityGroupRule).where(
        SecurityGroupRule.group_id == group.id,
        *(getattr(SecurityGroupRule, k) == v if v is not None else getattr(SecurityGroupRule, k).is_(None)
          for k, v in rule.items()))).first()
    if existing is not None:
        return existing
    added = SecurityGroupRule(group_id=group.id, **rule)
    session.add(added)
    session.commit()
    return added


def remove_rule(session, group, rule_id):
    """Removing a rule that is gone already is not an error (at-least-once)."""
    removed = session.execute(delete(SecurityGroupRule).where(SecurityGroupRule.group_id == group.id,
                                                              SecurityGroupRule.id == rule_id)).rowcount
    session.commit()
    return bool(removed)


def groups_by_name(session, project_id, names):
    """The groups named (default: the project's `default`), for an instance of the project."""
    ensure_default(session, project_id)
    names = list(dict.fromkeys(names or [DEFAULT]))
    groups = []
    for name in names:
        group = _named(session, project_id, name)
        if group is None:
            raise _bad("security_groups", f"no security group {name} in this project")
        groups.append(group)
    return groups


def bind(session, owner, groups):
    """The instance (its address `owner`) is in exactly `groups` from now on (idempotent)."""
    wanted = {g.id for g in groups}
    have = set(session.scalars(select(PortGroup.group_id).where(PortGroup.owner == owner)))
    if have - wanted:
        session.execute(delete(PortGroup).where(PortGroup.owner == owner, PortGroup.group_id.in_(have - wanted)))
    for group_id in sorted(wanted - have):
        session.add(PortGroup(owner=owner, group_id=group_id))
    try:
        session.commit()
    except IntegrityError:   # a concurrent bind of the same owner: the same outcome
        session.rollback()


def unbind(session, owner):
    session.execute(delete(PortGroup).where(PortGroup.owner == owner))


def groups_of(session, owner):
    return session.scalars(select(SecurityGroup).join(PortGroup, PortGroup.group_id == SecurityGroup.id)
                           .where(PortGroup.owner == owner).order_by(SecurityGroup.id)).all()


def hosts_affected(session, group_id):
    """Hosts whose rules name the group: its members' hosts and those of members of groups whose
    rules name it as their peer."""
    groups = {group_id} | set(session.scalars(select(SecurityGroupRule.group_id)
                                              .where(SecurityGroupRule.remote_group_id == group_id)))
    owners = select(PortGroup.owner).where(PortGroup.group_id.in_(groups))
    hosts = set()
    for host, moving_to in session.execute(select(Address.host, Address.moving_to).where(Address.owner.in_(owners))):
        hosts |= {host, moving_to}
    return sorted(h for h in hosts if h)


def delete_all_of(session, project_id):
    """The course is gone: its groups, their rules and memberships go. Returns the hosts whose
    rules named them. Idempotent."""
    group_ids = list(session.scalars(select(SecurityGroup.id).where(SecurityGroup.project_id == project_id)))
    if not group_ids:
        return []
    hosts = set()
    for group_id in group_ids:
        hosts |= set(hosts_affected(session, group_id))
    session.execute(delete(SecurityGroupRule).where(SecurityGroupRule.group_id.in_(group_ids)))
    session.execute(delete(SecurityGroupRule).where(SecurityGroupRule.remote_group_id.in_(group_ids)))
    session.execute(delete(PortGroup).where(PortGroup.group_id.in_(group_ids)))
    session.execute(delete(SecurityGroup).where(SecurityGroup.id.in_(group_ids)))
    session.commit()
    return sorted(hosts)
