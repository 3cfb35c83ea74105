"""`labcloud ip ...`: floating IPs (a course's) and their pools (admins'); `labcloud secgroup ...`:
a course's security groups and their rules, and the groups an instance is in."""
import click

from labcloud.commands import output
from labcloud.commands.base import completes, connect, group
from labcloud.commands.networks import allocation_bounds

POOL_COLUMNS = [("id", "ID"), ("name", "NAME"), ("cidr", "CIDR"),
                (lambda p: f"{p['allocation_start']}-{p['allocation_end']}", "RANGE"),
                ("allocated", "ALLOCATED"), ("free", "FREE")]
IP_COLUMNS = [("id", "ID"), ("ip", "IP"), ("pool", "POOL"), ("project", "COURSE"),
              (lambda f: f["instance"] or "", "INSTANCE"), (lambda f: f["fixed_ip"] or "", "FIXED_IP")]


def _find_ip(client, value):
    """A floating IP by its address or its id."""
    return client._find("floating IP", "/floating-ips", value, key="ip")


@group()
def ip():
    """Floating IPs: allocate, list, show, associate, disassociate, release; pools (admins):
    pool-list, pool-create, pool-delete."""


@ip.command("pool-list")
@output.format_options
def ip_pool_list(fmt):
    """The floating pools and how many of their addresses are free."""
    output.emit_formatted(connect().get("/floating-pools"), fmt, columns=POOL_COLUMNS)


@ip.command("pool-create")
@click.argument("name")
@click.argument("cidr")
@click.option("--range", "allocation", metavar="FIRST-LAST", help="the addresses handed out (default: all)")
@click.option("--reserve", "reserved", multiple=True, help="an address nobody gets (repeatable)")
@output.format_options
def ip_pool_create(name, cidr, allocation, reserved, fmt):
    """Define a pool of floating (public) addresses (admins)."""
    body = {"name": name, "cidr": cidr, "reserved": list(reserved),
            **allocation_bounds(allocation, "203.0.113.10-203.0.113.99")}
    made = connect().post("/floating-pools", body)
    output.emit_formatted([made] if fmt.kind == "table" else made, fmt, columns=POOL_COLUMNS)


@ip.command("pool-delete")
@click.argument("pool")
def ip_pool_delete(pool):
    """Delete a pool none of whose addresses is allocated (admins)."""
    client = connect()
    gone = client.delete(f"/floating-pools/{client._find('floating pool', '/floating-pools', pool)['id']}")
    output.say(f"{gone['name']}: deleted")


@ip.command("allocate")
@click.option("--course", "project", required=True, shell_complete=completes("/projects"),
              help="the course the address is for")
@click.option("--pool", help="default: the first pool")
@output.format_options
def ip_allocate(project, pool, fmt):
    """Allocate a floating IP for a course (quota floating_ips)."""
    client = connect()
    body = {"project": client.project_id(project)}
    if pool:
        body["pool"] = pool
    made = client.post("/floating-ips", body)
    if fmt.kind == "table":
        return output.say(made["ip"])
    output.emit_formatted(made, fmt)


@ip.command("list")
@output.format_options
def ip_list(fmt):
    """The floating IPs of my courses."""
    output.emit_formatted(connect().get("/floating-ips"), fmt, columns=IP_COLUMNS)


@ip.command("show")
@click.argument("address", metavar="IP")
@output.format_options
def ip_show(address, fmt):
    """One floating IP: its pool, course and the instance it is associated with."""
    client = connect()
    output.emit_formatted(client.get(f"/floating-ips/{_find_ip(client, address)['id']}"), fmt)


@ip.command("associate")
@click.argument("address", metavar="IP")
@click.argument("instance", shell_complete=completes("/instances"))
def ip_associate(address, instance):
    """Send the floating IP's traffic to INSTANCE (of the same course)."""
    client = connect()
    done = client.post(f"/floating-ips/{_find_ip(client, address)['id']}/associate",
                       {"instance": client.find_instance(instance)["id"]})
    output.say(f"{done['ip']} -> {instance} ({done['fixed_ip']})")


@ip.command("disassociate")
@click.argument("address", metavar="IP")
def ip_disassociate(address):
    """Take the floating IP off its instance (it stays the course's)."""
    client = connect()
    done = client.post(f"/floating-ips/{_find_ip(client, address)['id']}/disassociate")
    output.say(f"{done['ip']}: not associated")


@ip.command("release")
@click.argument("address", metavar="IP")
def ip_release(address):
    """Give the floating IP back to its pool."""
    client = connect()
    gone = client.delete(f"/floating-ips/{_find_ip(client, address)['id']}")
    output.say(f"{gone['ip']}: released")


# ----- security groups -----
RULE_COLUMNS = [("id", "ID"), ("direction", "DIRECTION"), ("protocol", "PROTOCOL"),
                (lambda r: "" if r["port_min"] is None else
                 str(r["port_min"]) if r["port_min"] == r["port_max"] else f"{r['port_min']}-{r['port_max']}", "PORTS"),
                (lambda r: r["cidr"] or f"group {r['remote_group']}", "PEER")]
GROUP_COLUMNS = [("id", "ID"), ("name", "NAME"), (lambda g: len(g["rules"]), "RULES"),
                 (lambda g: len(g["instances"]), "INSTANCES"), ("description", "DESCRIPTION")]


def _find_group(client, course, name):
    return client._find("security group", f"/projects/{client.project_id(course)}/security-groups", name)


def course_argument(command):
    return click.argument("course", metavar="COURSE", shell_complete=completes("/projects"))(command)


@group()
def secgroup():
    """A course's security groups: list, show, create, delete, rule-add, rule-remove; an
    instance's groups: instance."""


@secgroup.command("list")
@course_argument
@output.format_options
def secgroup_list(course, fmt):
    """The course's groups (its `default` is made on first use)."""
    client = connect()
    output.emit_formatted(client.get(f"/projects/{client.project_id(course)}/security-groups"), fmt,
                          columns=GROUP_COLUMNS)


@secgroup.command("show")
@course_argument
@click.argument("name", metavar="GROUP")
@output.format_options
def secgroup_show(course, name, fmt):
    """A group's rules."""
    found = _find_group(connect(), course, name)
    output.emit_formatted(found["rules"] if fmt.kind == "table" else found, fmt, columns=RULE_COLUMNS)


@secgroup.command("create")
@course_argument
@click.argument("name", metavar="GROUP")
@click.option("--description", default="")
def secgroup_create(course, name, description):
    """A new group of the course (its managers); it allows nothing until rules are added."""
    client = connect()
    made = client.post("/security-groups", {"project": client.project_id(course), "name": name,
                                            "description": description})
    output.say(f"{made['name']}: created (id {made['id']})")


@secgroup.command("delete")
@course_argument
@click.argument("name", metavar="GROUP")
def secgroup_delete(course, name):
    """Delete a group no instance is in (not `default`)."""
    client = connect()
    gone = client.delete(f"/security-groups/{_find_group(client, course, name)['id']}")
    output.say(f"{gone['name']}: deleted")


@secgroup.command("rule-add")
@course_argument
@click.argument("name", metavar="GROUP")
@click.option("--protocol", type=click.Choice(["tcp", "udp", "icmp", "any"]), required=True)
@click.option("--port", metavar="PORT[-LAST]", help="tcp and udp: a port or a range")
@click.option("--cidr", help="the peer network (ingress: where from; egress: where to)")
@click.option("--from-group", "remote_group", metavar="GROUP", help="or: the members of this group")
@click.option("--egress", is_flag=True, help="traffic the instances send (default: what they receive)")
def secgroup_rule_add(course, name, protocol, port, cidr, remote_group, egress):
    """Allow traffic; applied live on the hosts."""
    client = connect()
    body = {"direction": "egress" if egress else "ingress", "protocol": protocol}
    if port:
        first, _, last = port.partition("-")
        try:
            body["port_min"], body["port_max"] = int(first), int(last or first)
        except ValueError:
            raise click.BadParameter("a port or FIRST-LAST, e.g. 8000-8080", param_hint="--port") from None
    if cidr:
        body["cidr"] = cidr
    if remote_group:
        body["remote_group"] = remote_group
    group_id = _find_group(client, course, name)["id"]
    changed = client.post(f"/security-groups/{group_id}/rules", body)
    output.emit(changed["rules"], False, columns=RULE_COLUMNS)


@secgroup.command("rule-remove")
@course_argument
@click.argument("name", metavar="GROUP")
@click.argument("rule_id", type=int, metavar="RULE")
def secgroup_rule_remove(course, name, rule_id):
    """Remove a rule (its id: labcloud secgroup show); applied live."""
    client = connect()
    client.delete(f"/security-groups/{_find_group(client, course, name)['id']}/rules/{rule_id}")
    output.say(f"rule {rule_id}: removed")


@secgroup.command("instance")
@click.argument("instance", shell_complete=completes("/instances"))
@click.option("--set", "groups", multiple=True, metavar="GROUP",
              help="put the instance in exactly these groups (repeatable), live")
def secgroup_instance(instance, groups):
    """The groups an instance is in (or, with --set, change them)."""
    client = connect()
    instance_id = client.find_instance(instance)["id"]
    path = f"/instances/{instance_id}/security-groups"
    listed = client.put(path, {"security_groups": list(groups)}) if groups else client.get(path)
    output.say(" ".join(g["name"] for g in listed))


COMMANDS = [ip, secgroup]
