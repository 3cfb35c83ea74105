"""The metadata a guest asks for, answered per source address on its host. (Whether the guest's
SSH answers is checked by its host agent, which reaches the guest from inside the host's network.)"""
from sqlalchemy import select

from common.errors import NotFound
from services.instances import states
from services.instances.models import Flavor, Instance


def guest_metadata(session, host, ip, availability_zone):
    """A guest may read only its own data: it is found by (host, source IP) of the request."""
    instance = session.scalars(select(Instance).where(
        Instance.host == host, Instance.ip == ip, Instance.state.in_(states.METADATA_VISIBLE))).first()
    if instance is None:
        raise NotFound(f"no instance at {ip} on {host}")
    flavor = session.get(Flavor, instance.flavor_id)
    return {"instance_id": instance.id, "hostname": instance.name, "local_ipv4": instance.ip,
            "mac": instance.mac, "public_keys": [instance.public_key] if instance.public_key else [],
            "instance_type": flavor.name, "availability_zone": availability_zone,
            "user_data": instance.user_data}
