"""What admins do with hosts: look at one (with the instances on it), disable, enable and drain
it. Where instances go is scheduler.py's business, how they move migrate.py's; this module reads
and sets the host's state.

Drain: the host becomes `draining` (no new placement, like `disabled`) and each running or stopped
instance on it is asked to migrate (running ones live; the scheduler picks each destination among
the enabled hosts). Once none is running, stopped or migrating on it any more, it becomes
`disabled` (checked at the drain and after every migration from it that ends: `finish_drain`). An
instance in `error` stays (an admin looks at it). A migration that is refused (no room elsewhere) or
fails leaves its instance there and the host `draining`: the drain's answer and the instance's
reason say why, and a second drain tries again."""
from sqlalchemy import select, update

from common.errors import LabcloudError, NotFound
from services.instances import migrate, scheduler, states
from services.instances.models import Flavor, Host, Instance

# What a drain moves, and what keeps a draining host from being disabled (guests still there or
# leaving; an instance in `error` stays: an admin looks at it).
MOVABLE = ("running", "stopped")
STILL_HERE = ("running", "stopped", "migrating")


def get_host(session, name, policy, now):
    host = session.get(Host, name, populate_existing=True)
    if host is None:
        raise NotFound(f"no host {name}")
    rows = session.execute(
        select(Instance.id, Instance.name, Instance.state, Instance.user_id, Instance.project_id,
               Flavor.vcpus, Instance.memory_mib)
        .join(Flavor, Flavor.id == Instance.flavor_id)
        .where(Instance.host == name, Instance.state.in_(states.LIVE)).order_by(Instance.name))
    return {**scheduler.describe(host, policy, now), "instances_on_host": [row._asdict() for row in rows]}


def set_state(session, name, state, policy, now):
    """disabled: no new placement (what runs there stays); enabled: placements again. Idempotent."""
    return scheduler.set_host_state(session, name, state, policy, now)


def drain(session, actor, name, policy, now, routed_subnet_of=None):
    """Returns (the host, [(instance id, its state before)] of the instances asked to migrate now,
    {instance id: why not}). `routed_subnet_of`: as for migrate.request_migration."""
    scheduler.set_host_state(session, name, "draining", policy, now)
    movable = session.scalars(select(Instance.id).where(Instance.host == name, Instance.state.in_(MOVABLE))
                              .order_by(Instance.id)).all()
    started, refused = [], {}
    for instance_id in movable:
        try:
            _instance, was = migrate.request_migration(session, actor, instance_id, {}, policy, now,
                                                       routed_subnet_of)
        except LabcloudError as exc:   # no room elsewhere, or it changed meanwhile: it stays for now
            session.rollback()
            refused[instance_id] = exc.message
            continue
        if was:
            started.append((instance_id, was))
    finish_drain(session, name)
    return scheduler.describe(session.get(Host, name, populate_existing=True), policy, now), started, refused


def finish_drain(session, name):
    """A draining host with nothing running or migrating on it any more becomes disabled (one
    compare-and-set statement: a drain asked again, or an enable meanwhile, is not overridden)."""
    if name is None:
        return False
    still_here = select(Instance.id).where(Instance.host == name, Instance.state.in_(STILL_HERE)).exists()
    done = session.execute(update(Host).where(Host.name == name, Host.state == "draining", ~still_here)
                           .values(state="disabled")).rowcount == 1
    session.commit()
    return done
