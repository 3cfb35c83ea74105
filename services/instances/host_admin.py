"""What admins do with hosts: look at one (with the instances on it), disable and enable it. Where
instances go is scheduler.py's business; this module only reads and sets the host's state."""
from sqlalchemy import select

from common.errors import NotFound
from services.instances import scheduler, states
from services.instances.models import Flavor, Host, Instance


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
