"""What placement asks of a host: the request, the filters (in the order they are applied), the
weighers and the refusal message. scheduler.py runs them.

Filters, each a SQL condition a host must meet (the database filters and weighs; every host row
carries its allocation counters):
- image: the flavor is not below the image's minimums (the same for every host);
- current: for a migration, not the host the instance is on;
- disabled: the host is `enabled` (`disabled` and `draining` hosts take no new instance);
- down: its heartbeats are fresh (scheduler.is_up);
- anti_affinity: when asked, it holds no other instance of the owner's placement group;
- cpu, memory, disk: allocated + requested <= size x allocation ratio (Nova's defaults:
  CPU_ALLOCATION_RATIO 4.0, MEMORY_ALLOCATION_RATIO 1.0, DISK_ALLOCATION_RATIO 1.0); a host that
  has not reported its disk size is not filtered on disk.

Weighers, on the host's free memory (its memory minus what is allocated, before any ratio, like
Nova's RAM weigher): `spread` (default) takes the most free memory first, then the fewest
instances, then the name; `pack` the exact reverse (least free memory that fits first). Both walk
the index ix_hosts_free_memory, so a decision reads a few host rows, not all of them.

The statements are built once with bound parameters (`parameters` gives their values).
"""
import functools
from dataclasses import dataclass

from sqlalchemy import Float, and_, bindparam, case, func, not_, or_, select

from services.instances import states
from services.instances.models import Host, Instance

FILTERS = ("image", "current", "disabled", "down", "anti_affinity", "cpu", "memory", "disk")
STRATEGIES = ("spread", "pack")
DEFAULT_RATIOS = {"cpu": 4.0, "memory": 1.0, "disk": 1.0}
# Older policy keys, still read when the new ones are not given.
OLD_RATIO_KEYS = {"cpu": "cpu_overcommit", "memory": "memory_overcommit"}


@dataclass(frozen=True)
class Request:
    """One instance to place: what it takes, whose group it is in, what its image needs."""
    flavor: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    user_id: int = None
    group: str = None
    anti_affinity: bool = False
    image_min_disk_gib: int = 0
    image_min_memory_mib: int = None
    current_host: str = None   # a migration's source: any host but this one

    @property
    def moves(self):
        return self.current_host is not None

    @property
    def avoids_group(self):
        return bool(self.anti_affinity and self.group)


def request_for(flavor, instance=None, image=None):
    """The request of `instance` (its own memory_mib, group and anti-affinity flag) of `flavor`;
    `image` is the storage service's image (min_disk_gib, optional min_memory_mib) or None."""
    image = image or {}
    memory = getattr(instance, "memory_mib", None)
    return Request(
        flavor=flavor.name, vcpus=flavor.vcpus, memory_mib=flavor.memory_mib if memory is None else memory,
        disk_gib=flavor.disk_gib, user_id=getattr(instance, "user_id", None),
        group=getattr(instance, "placement_group", None), anti_affinity=bool(getattr(instance, "anti_affinity", False)),
        image_min_disk_gib=image.get("min_disk_gib") or 0, image_min_memory_mib=image.get("min_memory_mib"))


def as_request(request):
    """A Request from a Request, a dict of its fields, or a bare Flavor (what it takes, nothing else)."""
    if isinstance(request, Request):
        return request
    if isinstance(request, dict):
        return Request(**request)
    return request_for(request)


def ratio(policy, resource):
    value = policy.get(f"{resource}_allocation_ratio")
    if value is None:
        value = policy.get(OLD_RATIO_KEYS.get(resource, ""))
    return float(DEFAULT_RATIOS[resource] if value is None else value)


def capacity(total, policy, resource):
    """What a host may promise of `resource`: its size x the allocation ratio (None: unknown)."""
    return None if total is None else total * ratio(policy, resource)


def fits(allocated, requested, total, host_ratio):
    """allocated + requested <= total x ratio: on numbers a bool, on columns a SQL condition."""
    return allocated + requested <= total * host_ratio


def host_fits(allocated, total, request, policy):
    """The cpu, memory and disk filters on numbers: `allocated` (vcpus, memory_mib, disk_gib) and
    `total` (the host's sizes; disk None: unknown)."""
    return (fits(allocated[0], request.vcpus, total[0], ratio(policy, "cpu"))
            and fits(allocated[1], request.memory_mib, total[1], ratio(policy, "memory"))
            and (total[2] is None or fits(allocated[2], request.disk_gib, total[2], ratio(policy, "disk"))))


def image_refusal(request):
    """Why the flavor is below the image's minimums, or None."""
    if request.disk_gib < (request.image_min_disk_gib or 0):
        return f"flavor {request.flavor} has {request.disk_gib} GiB of disk, the image needs {request.image_min_disk_gib}"
    if request.image_min_memory_mib and request.memory_mib < request.image_min_memory_mib:
        return (f"flavor {request.flavor} has {request.memory_mib} MiB of memory, "
                f"the image needs {request.image_min_memory_mib}")
    return None


def parameters(request, fresh_after, policy):
    """The values of the statements' bound parameters."""
    return {"fresh_after": fresh_after, "vcpus": request.vcpus, "memory_mib": request.memory_mib,
            "disk_gib": request.disk_gib, "user_id": request.user_id, "group": request.group,
            "current_host": request.current_host,
            **{f"{r}_ratio": ratio(policy, r) for r in DEFAULT_RATIOS}}


def in_group():
    """SQL: the instance belongs to the request's owner and placement group."""
    return and_(Instance.user_id == bindparam("user_id"), Instance.placement_group == bindparam("group"))


def host_filters(avoids_group, moves=False):
    """[(filter name, SQL condition a host must meet)], in order (not the image filter: it does
    not depend on the host)."""
    def ratio_of(resource):
        return bindparam(f"{resource}_ratio", type_=Float)

    filters = [("current", Host.name != bindparam("current_host"))] if moves else []
    filters += [
        ("disabled", Host.state == "enabled"),
        ("down", and_(Host.last_heartbeat.is_not(None), Host.last_heartbeat >= bindparam("fresh_after"))),
    ]
    if avoids_group:   # the group's hosts, read once per query from index ix_instances_placement_group
        filters.append(("anti_affinity", Host.name.not_in(select(Instance.host).where(
            in_group(), Instance.state.in_(states.HOLDS_HOST_RESOURCES), Instance.host.is_not(None)))))
    filters += [
        ("cpu", fits(Host.allocated_vcpus, bindparam("vcpus"), Host.vcpus, ratio_of("cpu"))),
        ("memory", fits(Host.allocated_memory_mib, bindparam("memory_mib"), Host.memory_mib, ratio_of("memory"))),
        ("disk", or_(Host.disk_gib.is_(None),
                     fits(Host.allocated_disk_gib, bindparam("disk_gib"), Host.disk_gib, ratio_of("disk")))),
    ]
    return filters


def strategy(policy):
    name = policy.get("strategy") or "spread"
    if name not in STRATEGIES:
        raise ValueError(f"placement strategy {name!r}: one of {', '.join(STRATEGIES)}")
    return name


def weigher(strategy_name):
    """ORDER BY of the candidates, best first: the order of index ix_hosts_free_memory, or its reverse."""
    free_memory = Host.memory_mib - Host.allocated_memory_mib
    if strategy_name == "pack":
        return free_memory.asc(), Host.allocated_instances.desc(), Host.name.desc()
    return free_memory.desc(), Host.allocated_instances.asc(), Host.name.asc()


@functools.lru_cache(maxsize=None)
def candidates(avoids_group, strategy_name, limit, moves=False):
    """SELECT the names of the best `limit` hosts that pass every filter."""
    return (select(Host.name).where(*[condition for _name, condition in host_filters(avoids_group, moves)])
            .order_by(*weigher(strategy_name)).limit(limit))


@functools.lru_cache(maxsize=None)
def refusals(avoids_group, moves=False):
    """SELECT (the first filter a host fails, or 'fits'; how many hosts) for every host."""
    first = case(*[(not_(condition), name) for name, condition in host_filters(avoids_group, moves)],
                 else_="fits")
    per_host = select(first.label("filter")).subquery()
    return select(per_host.c.filter, func.count()).group_by(per_host.c.filter)


HEADLINES = {
    "image": "flavor {flavor} is below the image's minimum",
    "current": "no host but its own ({current}) could take it",
    "disabled": "no hypervisor host is enabled",
    "down": "no hypervisor host is up",
    "anti_affinity": "every host that could take it holds an instance of group {group}",
    "cpu": "no host has room for flavor {flavor}",
    "memory": "no host has room for flavor {flavor}",
    "disk": "no host has room for flavor {flavor}",
    None: "no hypervisor host is up",
    "fits": "every host with room for flavor {flavor} was taken meanwhile",
}


def refusal_message(request, total, removed, detail=None, last=None):
    """`removed`: {filter: hosts it removed}. Names the filter that removed the last candidates
    (`last`, else the last one in order that removed any) and what each filter removed."""
    if last is None:
        last = "fits" if removed.get("fits") else next((f for f in reversed(FILTERS) if removed.get(f)), None)
    headline = HEADLINES[last].format(flavor=request.flavor, group=request.group, current=request.current_host)
    shown = {"anti_affinity": request.avoids_group, "current": request.moves}
    counts = ", ".join(f"{name}: {removed.get(name, 0)}" for name in FILTERS if shown.get(name, True))
    message = f"{headline}: {total} host{'s' if total != 1 else ''}; {counts}"
    if last not in (None, "fits"):
        message += f" (the {last} filter removed the last{': ' + detail if detail else ''})"
    return last, message
