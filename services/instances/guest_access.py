"""What a guest and its user need to reach each other: the metadata a guest asks for (answered per
source address on its host), and the post-boot check that SSH answers (Orca's post-install step)."""
import socket
import time

import paramiko
from sqlalchemy import select

from common.errors import NotFound
from services.instances.models import Flavor, Instance

METADATA_STATES = ("building", "running", "stopping", "starting", "rebooting")


def guest_metadata(session, host, ip, availability_zone):
    """A guest may read only its own data: it is found by (host, source IP) of the request."""
    instance = session.scalars(select(Instance).where(
        Instance.host == host, Instance.ip == ip, Instance.state.in_(METADATA_STATES))).first()
    if instance is None:
        raise NotFound(f"no instance at {ip} on {host}")
    flavor = session.get(Flavor, instance.flavor_id)
    return {"instance_id": instance.id, "hostname": instance.name, "local_ipv4": instance.ip,
            "mac": instance.mac, "public_keys": [instance.public_key] if instance.public_key else [],
            "instance_type": flavor.name, "availability_zone": availability_zone,
            "user_data": instance.user_data}


def ssh_answers(host, port, timeout=5):
    """True when an SSH server completes the key exchange at host:port (no login: we hold no key)."""
    transport = None
    try:
        transport = paramiko.Transport((host, port))
        transport.banner_timeout = timeout
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key() is not None
    except (paramiko.SSHException, OSError, EOFError):
        return False
    finally:
        if transport is not None:
            transport.close()


def banner_seen(host, port, timeout=1.0):
    """Cheap first test: an SSH server greets with `SSH-` at once. No key exchange, so polling
    it costs almost no CPU, which a booting TCG guest on the same cores needs."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(4) == b"SSH-"
    except OSError:
        return False


def wait_for_ssh(host, port, deadline_s, sleep=time.sleep, clock=time.monotonic):
    """Poll for the banner, then confirm with one full paramiko key exchange."""
    deadline = clock() + deadline_s
    while clock() < deadline:
        if banner_seen(host, port) and ssh_answers(host, port):
            return True
        sleep(0.1)
    return False
