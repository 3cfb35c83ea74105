"""The create and delete sagas. Each step is idempotent on the far side (same owner, same disk
name, same domain uuid), so a redelivered event simply runs the saga again; any failure runs the
full teardown, which is idempotent too, so nothing is left behind even when a step failed after
doing its work (a lost reply)."""
import ipaddress
import logging

import eventlet

from nameko.exceptions import UnknownService
from sqlalchemy import update

from common.errors import LabcloudError
from services.instances import scheduler
from services.instances.models import Flavor, Instance

log = logging.getLogger(__name__)


class Collaborators:
    """The other services a saga talks to (nameko proxies in the service, fakes in unit tests)."""

    def __init__(self, network, storage, hosts):
        self.network = network
        self.storage = storage
        self.hosts = hosts


def transition(session, instance_id, from_states, to_state, **values):
    """Compare-and-set on the state column: False when someone else (a delete) moved it first."""
    result = session.execute(
        update(Instance).where(Instance.id == instance_id, Instance.state.in_(from_states))
        .values(state=to_state, **values))
    session.commit()
    return result.rowcount == 1


def domain_spec(instance, flavor, disk_path, address, boot):
    spec = {
        "instance_id": instance.id, "name": f"lc-{instance.id}", "vcpus": flavor.vcpus,
        "memory_mib": flavor.memory_mib, "cpu_weight": flavor.cpu_weight,
        "cpu_cap_percent": flavor.cpu_cap_percent, "disk_path": disk_path,
        "mac": instance.mac, "ip": instance.ip, "hostname": instance.name,
    }
    if boot:
        spec.update(kernel=boot["kernel"], initrd=boot["initrd"],
                    cmdline=f"{boot['cmdline']} {kernel_ip_argument(instance, address)}".strip())
    return spec


def kernel_ip_argument(instance, address):
    """The kernel's `ip=` (nfsroot.txt form), parsed by the tiny image's /init: no DHCP wait."""
    netmask = str(ipaddress.IPv4Network(f"0.0.0.0/{address['prefixlen']}").netmask)
    return f"ip={instance.ip}::{address['gateway']}:{netmask}:{instance.name}:eth0:off"


def in_parallel(*calls):
    """Run the calls in greenthreads; wait for all of them (so nothing is still being made when a
    teardown starts), then return their results or raise the first failure."""
    threads = [eventlet.spawn(call) for call in calls]
    results, failure = [], None
    for thread in threads:
        try:
            results.append(thread.wait())
        except Exception as exc:  # collected: every call must finish before we decide
            failure = failure or exc
    if failure is not None:
        raise failure
    return results


def run_create(session, instance_id, peers, policy, now):
    """Returns the final state. Safe to call again for the same instance."""
    instance = session.get(Instance, instance_id)
    if instance is None or instance.state not in ("pending", "building"):
        return None if instance is None else instance.state
    flavor = session.get(Flavor, instance.flavor_id)
    try:
        if instance.host is None:
            host = scheduler.pick_host(session, flavor, now(), policy)
            if not transition(session, instance_id, ["pending"], "building", host=host):
                return _abandon(session, instance_id, peers, now)
        elif not transition(session, instance_id, ["pending", "building"], "building"):
            return _abandon(session, instance_id, peers, now)
        session.refresh(instance)

        # The address, the disk and the boot files do not depend on each other: ask for all three
        # at once (each is idempotent, and a failure of one is undone by the full teardown).
        address, volume, boot = in_parallel(
            lambda: peers.network.allocate_address({"owner": instance_id}),
            lambda: peers.storage.create_root_disk({
                "instance_id": instance_id, "image_id": instance.image_id, "host": instance.host,
                "size_gib": flavor.disk_gib}),
            lambda: peers.storage.get_boot_files(instance.image_id))
        if not transition(session, instance_id, ["building"], "building", ip=address["ip"],
                          mac=address["mac"], root_volume_id=volume["id"]):
            return _abandon(session, instance_id, peers, now)

        session.refresh(instance)
        domain = peers.hosts(instance.host).create_domain(
            domain_spec(instance, flavor, volume["path"], address, boot))
        if not transition(session, instance_id, ["building"], "running", running_at=now(), started_at=now(),
                          ssh_port=domain.get("ssh_port"), ssh_ready_at=None, reason=None):
            return _abandon(session, instance_id, peers, now)
        return "running"
    except Exception as exc:  # every failure is compensated, whatever raised it
        reason = describe_failure(exc)
        log.warning("create of %s failed, undoing: %s", instance_id, reason)
        session.rollback()
        try:
            teardown(session, instance_id, peers)
        except Exception as cleanup_exc:
            reason = f"{reason}; cleanup incomplete: {describe_failure(cleanup_exc)}"
            # Still holding something on a host: keep it visible as an error, never `deleted`.
            transition(session, instance_id, ["deleting"], "error", reason=reason[:2000])
        if transition(session, instance_id, ["pending", "building"], "error", reason=reason[:2000]):
            return "error"
        return _finish_delete(session, instance_id, now)


def describe_failure(exc):
    return str(exc) if isinstance(exc, LabcloudError) else f"{type(exc).__name__}: {exc}"


def _abandon(session, instance_id, peers, now):
    """The instance was deleted while building: undo what the saga made, then finish the delete."""
    teardown(session, instance_id, peers)
    return _finish_delete(session, instance_id, now)


def _finish_delete(session, instance_id, now):
    transition(session, instance_id, ["deleting"], "deleted", deleted_at=now())
    session.expire_all()
    instance = session.get(Instance, instance_id)
    return instance.state if instance else None


def teardown(session, instance_id, peers):
    """Remove domain, disk and address, in that order. Each call is idempotent; all are tried
    even if one fails, and the first failure is raised after the others ran."""
    instance = session.get(Instance, instance_id)
    failures = []
    if instance is not None and instance.host:
        try:
            peers.hosts(instance.host).destroy_domain({"instance_id": instance_id})
        except UnknownService:
            pass  # no agent has ever served this host on this broker: no domain can be there
        except Exception as exc:
            failures.append(exc)
    for step in (lambda: peers.storage.delete_root_disk({"instance_id": instance_id}),
                 lambda: peers.network.release_address({"owner": instance_id})):
        try:
            step()
        except Exception as exc:
            failures.append(exc)
    if failures:
        log.error("teardown of %s incomplete: %s", instance_id, failures)
        raise failures[0]


def run_delete(session, instance_id, peers, now):
    instance = session.get(Instance, instance_id)
    if instance is None or instance.state != "deleting":
        return None if instance is None else instance.state
    try:
        teardown(session, instance_id, peers)
    except Exception as exc:
        transition(session, instance_id, ["deleting"], "error",
                   reason=f"delete failed: {describe_failure(exc)}"[:2000])
        return "error"
    return _finish_delete(session, instance_id, now)
