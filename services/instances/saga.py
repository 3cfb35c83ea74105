"""The create and delete sagas. Each step is idempotent on the far side (same owner, same disk
name, same domain uuid), so a redelivered event simply runs the saga again; any failure runs the
full teardown, which is idempotent too, so nothing is left behind even when a step failed after
doing its work (a lost reply). State changes are compare-and-set moves (instance_store), so a
delete that arrives while the create is under way is seen at the saga's next checkpoint."""
import ipaddress
import logging

import eventlet
from nameko.exceptions import UnknownService

from common.errors import LabcloudError
from services.instances import instance_store, scheduler, shares
from services.instances.models import Flavor, Instance

log = logging.getLogger(__name__)


class Collaborators:
    """The other services a saga talks to (nameko proxies in the service, fakes in unit tests)."""

    def __init__(self, network, storage, hosts):
        self.network = network
        self.storage = storage
        self.hosts = hosts


def domain_spec(instance, flavor, disk_path, address, boot):
    spec = {
        **shares.host_request(instance, flavor), "name": f"lc-{instance.id}", "disk_path": disk_path,
        "mac": address["mac"], "ip": address["ip"], "hostname": instance.name,
    }
    if address.get("network"):
        # A routed subnet of the host: the agent makes its network (by this name) and plugs the guest in.
        spec["network"] = {"name": address["network"], "cidr": address["cidr"], "gateway": address["gateway"],
                           "dns_servers": address.get("dns_servers", [])}
    if boot:
        spec.update(kernel=boot["kernel"], initrd=boot["initrd"],
                    cmdline=f"{boot['cmdline']} {kernel_ip_argument(instance, address)}".strip())
    return spec


def kernel_ip_argument(instance, address):
    """The kernel's `ip=` (nfsroot.txt form), parsed by the tiny image's /init: no DHCP wait."""
    netmask = str(ipaddress.IPv4Network(f"0.0.0.0/{address['prefixlen']}").netmask)
    return f"ip={address['ip']}::{address['gateway']}:{netmask}:{instance.name}:eth0:off"


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


def describe_failure(exc):
    return str(exc) if isinstance(exc, LabcloudError) else f"{type(exc).__name__}: {exc}"


def run_create(session, instance_id, peers, policy, now):
    """Returns the final state. Safe to call again for the same instance."""
    instance = session.get(Instance, instance_id)
    if instance is None:
        return None
    if instance.state == "deleting":
        return _abandon(session, instance_id, peers, now)  # a redelivery after a crash mid-saga
    if instance.state not in ("pending", "building"):
        return instance.state
    flavor = session.get(Flavor, instance.flavor_id)
    try:
        values = {}
        if instance.host is None:
            image = peers.storage.get_image(instance.image_id)   # its minimums filter the hosts
            request = scheduler.request_for(flavor, instance, image)
            values["host"] = scheduler.pick_host(session, request, now(), policy)
        if instance_store.move(session, instance_id, "saga:schedule", **values) is None:
            return _abandon(session, instance_id, peers, now)
        host = values.get("host") or instance.host  # (no reload: the row moved as we said)

        # The address and the disk (with the image's boot files) do not depend on each other: ask
        # for both at once (each is idempotent; a failure of one is undone by the full teardown).
        address, disk = in_parallel(
            lambda: peers.network.allocate_address({"owner": instance_id, "project": instance.project_id,
                                                    "host": host}),
            lambda: peers.storage.create_root_disk({
                "instance_id": instance_id, "image_id": instance.image_id, "host": host,
                "size_gib": flavor.disk_gib}))

        domain = peers.hosts(host).create_domain(
            domain_spec(instance, flavor, disk["path"], address, disk.get("boot")))
        # Address and disk are recorded with the move to running (a crash before it redelivers the
        # saga, which gets the same address and disk back; a delete meanwhile is seen by the move).
        built = dict(running_at=now(), started_at=now(), started_seq=domain["seq"],
                     ssh_port=domain.get("ssh_port"), ssh_ready_at=None, reason=None,
                     ip=address["ip"], mac=address["mac"], root_volume_id=disk["id"])
        # One statement records the answer and moves on (the common case); if an event of this
        # domain was recorded first (a newer seq), the move is made without the older answer.
        moved = instance_store.move(session, instance_id, "saga:built", commit=False,
                                    report=(domain["state"], domain["seq"]), **built)
        newer_report = moved is None
        if newer_report:
            moved = instance_store.move(session, instance_id, "saga:built", commit=False, **built)
        if moved is None:
            return _abandon(session, instance_id, peers, now)
        instance_store.finish_action(session, instance_id, "create", "success")
        if newer_report:  # the guest may have powered off already: follow what the host said last
            return instance_store.follow_host(session, instance_id, ("running",)) or "running"
        return "running"
    except Exception as exc:  # every failure is compensated, whatever raised it
        return _undo_failed_create(session, instance_id, peers, now, describe_failure(exc))


def _undo_failed_create(session, instance_id, peers, now, reason):
    log.warning("create of %s failed, undoing: %s", instance_id, reason)
    session.rollback()
    cleaned = True
    try:
        teardown(session, instance_id, peers)
    except Exception as cleanup_exc:
        # Something may still be on the host: the instance stays visible as an error (a delete
        # or reconcile finishes the cleanup), never `deleted`.
        cleaned, reason = False, f"{reason}; cleanup incomplete: {describe_failure(cleanup_exc)}"
    instance_store.finish_action(session, instance_id, "create", "error", reason)
    if instance_store.move(session, instance_id, "saga:fail", reason=reason) is not None:
        return "error"
    if cleaned:  # deleted while it was being built
        return _finish_delete(session, instance_id, peers, now)
    return "deleting"  # reconcile runs the delete again


def _abandon(session, instance_id, peers, now):
    """The instance was deleted while this saga worked: undo what it made, then finish the delete.
    Always a full teardown, whatever the state says: the delete saga may have finished before this
    saga's last calls made the address, disk or domain (if this teardown fails then, what is left
    is an orphan that reconcile removes after its grace period)."""
    instance_store.finish_action(session, instance_id, "create", "error", "deleted while it was being built")
    return _tear_down_and_finish(session, instance_id, peers, now)


def _tear_down_and_finish(session, instance_id, peers, now):
    """Teardown, then `deleted`; a teardown that fails leaves it `deleting` with the error, and
    reconcile runs the delete again."""
    try:
        teardown(session, instance_id, peers)
    except Exception as exc:
        instance_store.update_fields(session, instance_id, ["deleting"],
                                     reason=f"delete will be retried: {describe_failure(exc)}")
        return "deleting"
    return _finish_delete(session, instance_id, peers, now)


def _finish_delete(session, instance_id, peers, now):
    moved = instance_store.move(session, instance_id, "saga:torn_down", now=now())
    if moved is not None:
        instance_store.finish_action(session, instance_id, "delete", "success")
    session.expire_all()
    instance = session.get(Instance, instance_id)
    return instance.state if instance else None


def teardown(session, instance_id, peers):
    """Remove everything the instance has: on its host (domain, DHCP and neighbour entries, SSH
    forward, console log: one destroy_domain call), its disk, then (only once the domain is gone,
    so neither is handed out while a guest may still use it) its data volumes and its address. Each call
    is idempotent; the disk is tried even if the host call failed, and the first failure is raised."""
    instance = session.get(Instance, instance_id)
    failures = []
    # A delete during a migration: the destination may hold the domain (or its entries) and a copy
    # of the root disk too.
    hosts = [h for h in (instance.host, instance.migrating_to) if h] if instance is not None else []
    for host in hosts:
        try:
            peers.hosts(host).destroy_domain({"instance_id": instance_id})
        except UnknownService:
            pass  # no agent has ever served this host on this broker: nothing can be there
        except Exception as exc:
            failures.append(exc)
    try:
        peers.storage.delete_root_disk({"instance_id": instance_id})
        if instance is not None and instance.migrating_to:
            peers.storage.abort_root_disk_move({"instance_id": instance_id, "host": instance.migrating_to})
    except Exception as exc:
        failures.append(exc)
    if not failures:
        try:
            # The domain is gone: its data volumes are free again (available, their data kept).
            peers.storage.release_instance_volumes({"instance_id": instance_id})
            peers.network.release_address({"owner": instance_id})
        except Exception as exc:
            failures.append(exc)
    if failures:
        log.error("teardown of %s incomplete: %s", instance_id, failures)
        raise failures[0]


def run_delete(session, instance_id, peers, now, host_is_up=None):
    """Tear down a `deleting` instance, then `deleted`. When its host is down (or the teardown
    fails), it stays `deleting` with the reason, and reconcile runs the delete again later."""
    instance = session.get(Instance, instance_id)
    if instance is None or instance.state != "deleting":
        return None if instance is None else instance.state
    if instance.host and host_is_up is not None and not host_is_up(instance.host):
        instance_store.update_fields(session, instance_id, ["deleting"],
                                     reason=f"waiting for host {instance.host} to come back")
        return "deleting"
    return _tear_down_and_finish(session, instance_id, peers, now)
