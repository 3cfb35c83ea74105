"""`labcloud network ...`: subnets (admins): list, show, create, delete, reserve and release
addresses, and print the MACs guests of a subnet can get (Orca's pre-approval list); a course's
subnet blocks (its managers): block-reserve, blocks, block-end."""
import click

from labcloud.commands import output
from labcloud.commands.base import completes, connect, group


def subnet_mode(subnet):
    """One word (piped output stays awk-able): `bridged`, or `routed:HOST`."""
    return f"routed:{subnet['host']}" if subnet.get("mode") == "routed" else "bridged"


SUBNET_COLUMNS = [("id", "ID"), ("name", "NAME"), ("cidr", "CIDR"), ("gateway", "GATEWAY"),
                  (lambda s: f"{s['allocation_start']}-{s['allocation_end']}", "ALLOCATION_RANGE"),
                  ("mac_policy", "MACS"),
                  (subnet_mode, "MODE"),
                  ("allocated", "ALLOCATED"), ("free", "FREE"),
                  (lambda s: "yes" if s["is_default"] else "", "DEFAULT")]


def subnet_argument(command):
    return click.argument("subnet", metavar="SUBNET", shell_complete=completes("/subnets"))(command)


@group()
def network():
    """Subnets (admins): list, show, create, delete, reserve, unreserve, macs; a course's blocks:
    block-reserve, blocks, block-end."""


@network.command("list")
@output.format_options
def network_list(fmt):
    """The subnets, their allocation ranges and how many addresses guests hold and can still get."""
    output.emit_formatted(connect().get("/subnets"), fmt, columns=SUBNET_COLUMNS)


@network.command("show")
@subnet_argument
@output.format_options
def network_show(subnet, fmt):
    """One subnet, with its reserved addresses and DNS servers."""
    client = connect()
    output.emit_formatted(client.get(f"/subnets/{client.find_subnet(subnet)['id']}"), fmt)


@network.command("create")
@click.argument("name")
@click.argument("cidr")
@click.option("--gateway", help="default: the first host address")
@click.option("--range", "allocation", metavar="FIRST-LAST", help="the addresses guests get (Orca: .20-.254)")
@click.option("--dns", "dns_servers", multiple=True, help="a DNS server for its guests (repeatable)")
@click.option("--reserve", "reserved", multiple=True, help="an address no guest gets (repeatable)")
@click.option("--macs", "mac_policy", type=click.Choice(["orca", "random"]), default="orca", show_default=True,
              help="orca: aa:00 + the address's bytes (a list to pre-approve); random: locally administered")
@click.option("--default", "is_default", is_flag=True, help="new instances get addresses here")
@click.option("--mode", type=click.Choice(["bridged", "routed"]), default="bridged", show_default=True,
              help="bridged: on the hosts' shared segment; routed: HOST is its guests' gateway and router")
@click.option("--host", help="routed: the host the upstream routes the subnet to (its guests run there)")
@output.format_options
def network_create(name, cidr, gateway, allocation, dns_servers, reserved, mac_policy, is_default, mode, host,
                   fmt):
    """Create a subnet (POST /subnets)."""
    body = {"name": name, "cidr": cidr, "dns_servers": list(dns_servers), "reserved": list(reserved),
            "mac_policy": mac_policy, "is_default": is_default, "mode": mode}
    if gateway:
        body["gateway"] = gateway
    if host:
        body["host"] = host   # the service refuses it for bridged (400 naming host), as the API does
    body.update(allocation_bounds(allocation, "10.20.0.20-10.20.0.254"))
    made = connect().post("/subnets", body)
    output.emit_formatted([made] if fmt.kind == "table" else made, fmt, columns=SUBNET_COLUMNS)


def allocation_bounds(allocation, example):
    """--range FIRST-LAST as the body's allocation_start and allocation_end ({} when not given)."""
    if not allocation:
        return {}
    first, sep, last = allocation.partition("-")
    if not sep:
        raise click.BadParameter(f"FIRST-LAST, e.g. {example}", param_hint="--range")
    return {"allocation_start": first, "allocation_end": last}


@network.command("delete")
@subnet_argument
@output.format_options
def network_delete(subnet, fmt):
    """Delete a subnet no guest holds an address of."""
    client = connect()
    gone = client.delete(f"/subnets/{client.find_subnet(subnet)['id']}")
    if fmt.kind == "table":
        return output.say(f"{gone['name']}: deleted")
    output.emit_formatted(gone, fmt)


@network.command("reserve")
@subnet_argument
@click.argument("ip")
@click.option("--note", default="", help="what the address is for")
@output.format_options
def network_reserve(subnet, ip, note, fmt):
    """No guest gets IP from now on."""
    client = connect()
    changed = client.post(f"/subnets/{client.find_subnet(subnet)['id']}/reserved", {"ip": ip, "note": note})
    _say_reserved(changed, fmt)


@network.command("unreserve")
@subnet_argument
@click.argument("ip")
@output.format_options
def network_unreserve(subnet, ip, fmt):
    """Guests may get IP again."""
    client = connect()
    changed = client.delete(f"/subnets/{client.find_subnet(subnet)['id']}/reserved/{ip}")
    _say_reserved(changed, fmt)


def _say_reserved(subnet, fmt):
    if fmt.kind != "table":
        return output.emit_formatted(subnet, fmt)
    output.say(f"{subnet['name']}: reserved {', '.join(subnet['reserved']) or 'none'}")


@network.command("macs")
@subnet_argument
@output.format_options
def network_macs(subnet, fmt):
    """Every address guests of the subnet can get, with the MAC it comes with (`orca` subnets)."""
    client = connect()
    output.emit_formatted(client.get(f"/subnets/{client.find_subnet(subnet)['id']}/macs"), fmt,
                          columns=[("ip", "IP"), ("mac", "MAC")])


BLOCK_COLUMNS = [("id", "ID"), ("cidr", "CIDR"), ("subnet", "SUBNET"), ("allocated", "ALLOCATED"),
                 ("free", "FREE"), ("ends_at", "ENDS")]


@network.command("block-reserve")
@click.argument("course", metavar="COURSE", shell_complete=completes("/projects"))
@click.option("--prefix", "prefixlen", type=click.IntRange(22, 28), required=True,
              help="the block's size: 28 (16 addresses) to 22 (1024)")
@click.option("--subnet", help="the subnet to take it from (default: the default subnet)")
@click.option("--until", "ends_at", help="when it goes back, e.g. 2027-02-01T00:00:00Z (default: when ended)")
@output.format_options
def network_block_reserve(course, prefixlen, subnet, ends_at, fmt):
    """Reserve a block of addresses for a course's guests (its managers): they get addresses only
    from it, nobody else does."""
    client = connect()
    body = {"prefixlen": prefixlen}
    if subnet:
        body["subnet"] = subnet
    if ends_at:
        body["ends_at"] = ends_at
    made = client.post(f"/projects/{client.project_id(course)}/subnet-blocks", body)
    output.emit_formatted([made] if fmt.kind == "table" else made, fmt, columns=BLOCK_COLUMNS)


@network.command("blocks")
@click.argument("course", metavar="COURSE", shell_complete=completes("/projects"))
@output.format_options
def network_blocks(course, fmt):
    """A course's subnet blocks."""
    client = connect()
    output.emit_formatted(client.get(f"/projects/{client.project_id(course)}/subnet-blocks"), fmt,
                          columns=BLOCK_COLUMNS)


@network.command("block-end")
@click.argument("block_id", metavar="BLOCK_ID", type=click.IntRange(min=1))
@output.format_options
def network_block_end(block_id, fmt):
    """End a course's block: its addresses go back once its guests' are free."""
    ended = connect().delete(f"/subnet-blocks/{block_id}")
    if fmt.kind != "table":
        return output.emit_formatted(ended, fmt)
    left = f", back when its {ended['allocated']} addresses are free" if ended["allocated"] else ", back in the subnet"
    output.say(f"{ended['cidr']}: ended{left}")


COMMANDS = [network]
