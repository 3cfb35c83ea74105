"""Migration: an admin moves an instance to another host (policy instance:migrate): a running one
live, a stopped one cold (the host agent starts it paused for the move: it arrives stopped).

request_migration checks who asks and the state, and picks the destination: the one the admin
named, or the scheduler's choice among the other hosts (filter `current`). The destination is
claimed under its row lock as for a create, and in the same transaction the instance moves to
`migrating`, `migrating_to` names the destination and the destination's allocation counters take
the instance: it counts on both hosts until the move ends. Event `instance_migrate_requested`.

run_migration, the saga (each step is idempotent, so a redelivered event runs it again):
1. storage `prepare_root_disk_move`: the image on the destination and an empty top layer over it;
2. destination `prepare_incoming`: DHCP and neighbour entries, an SSH port, the console log's place,
   and how the source reaches it (libvirt URI, migration address);
3. source `migrate_domain`: libvirt's migration, the top layer copied while the guest runs (or
   while a stopped one sits paused);
4. destination `finish_incoming` (the guest runs there; the SSH port in its metadata), then
   `set_domain_shares` there: the shares are set again on the destination (Orca's lesson: the
   destination's driver did not know them);
5. storage `complete_root_disk_move`: the volume's row names the destination's copy, the source's
   goes; source `destroy_domain` with keep_sessions: its SSH endpoint takes no new session but
   those it carries go on, its DHCP and neighbour entries, console log and bandwidth device go;
6. the instance: host = destination, migrating_to cleared, the new SSH port, running; the source's
   counters let it go.
A failure before the guest is known to run on the destination (asked of the destination itself,
so a lost reply of step 3 is not taken for a failure) leaves it on the source, where libvirt
resumes it: the destination's entries and domain (destroy_domain) and top layer
(abort_root_disk_move) go, the destination's counters let it go, and the action log says why.
A failure after that ends `error` on the destination with the reason (reconcile takes it from
there). A delete during the move cleans up on both hosts (saga.teardown).
"""
import dataclasses
import logging

from common import policy
from common.errors import Conflict, InvalidInput, NotFound
from services.instances import access, instance_store, placement, scheduler, shares, states
from services.instances.models import Flavor, Host, Instance
from services.instances.saga import describe_failure

log = logging.getLogger(__name__)
ACTION = "migrate"


def request_migration(session, actor, instance_id, request, placement_policy, now, routed_subnet_of=None):
    """Returns (instance, the state it migrates from: running or stopped), or (instance, None) when
    a migration is already under way. `routed_subnet_of(instance_id)`: the routed subnet its address
    is on (the network service's answer), or None; such an instance cannot leave its host."""
    instance = access.visible_instance(session, actor, instance_id)
    policy.enforce(actor, "instance:migrate", access.target(instance), what="migrate an instance")
    if instance.state == "migrating":
        return instance, None
    states.require(ACTION, instance.state)
    was = instance.state
    source = instance.host
    wanted = placement.request_for(session.get(Flavor, instance.flavor_id), instance)
    wanted = dataclasses.replace(wanted, current_host=source)
    session.commit()  # pick_host and claim start with nothing of ours pending
    _refuse_routed(instance_id, source, routed_subnet_of)
    destination = request.get("host")
    if destination:
        _claim_named(session, destination, source, wanted, now, placement_policy)
    else:
        destination = scheduler.pick_host(session, wanted, now, placement_policy)
    if instance_store.move(session, instance.id, ACTION, commit=False, migrating_to=destination) is None:
        session.rollback()
        raise Conflict("the instance changed meanwhile; read it again and retry", {"state": ["changed meanwhile"]})
    scheduler.add_to_host(session, destination, instance.id)
    instance_store.start_action(session, instance.id, ACTION, actor, f"{source} -> {destination}", commit=False)
    session.commit()
    session.refresh(instance)
    return instance, was


def _refuse_routed(instance_id, source, routed_subnet_of):
    """Only its host's upstream routes a routed subnet (the network service refuses to place the
    address elsewhere): refused now, rather than by the saga's first step."""
    subnet = routed_subnet_of(instance_id) if routed_subnet_of else None
    if subnet:
        raise Conflict(f"the instance's address is on subnet {subnet}, routed to {source}: it cannot move",
                       {"host": [f"its subnet {subnet} is routed to {source}"]})


def _claim_named(session, name, source, wanted, now, placement_policy):
    """The admin's choice, claimed (row locked) or refused with what is wrong with it."""
    if name == source:
        raise InvalidInput(f"the instance is on {name} already", {"host": ["the instance's own host"]})
    host = session.get(Host, name)
    if host is None:
        raise NotFound(f"no host {name}", {"host": ["unknown host"]})
    if scheduler.claim(session, name, wanted, now, placement_policy):
        return
    session.rollback()
    if host.state != "enabled":
        problem = f"is {host.state}"
    elif not scheduler.is_up(host, now, placement_policy):
        problem = "is down"
    elif wanted.avoids_group:
        problem = f"holds another instance of group {wanted.group}, or has no room for flavor {wanted.flavor}"
    else:
        problem = f"has no room for flavor {wanted.flavor}"
    raise Conflict(f"host {name} {problem}", {"host": [problem]})


def run_migration(session, instance_id, peers, now, live=True):
    """The saga (event `instance_migrate_requested`; `live`: it was running, else stopped). Returns
    the state it ended in, or None when there was nothing to do (not migrating: done already, or
    deleted meanwhile)."""
    instance = session.get(Instance, instance_id)
    if instance is None or instance.state != "migrating" or not instance.migrating_to:
        return None
    source, destination = instance.host, instance.migrating_to
    flavor = session.get(Flavor, instance.flavor_id)
    arrived = None
    try:
        # Its filter and floating-IP rules go to the destination too, before the guest arrives.
        peers.network.place_address({"owner": instance_id, "host": source, "moving_to": destination})
        disk = peers.storage.prepare_root_disk_move({"instance_id": instance_id, "host": destination})
        incoming = peers.hosts(destination).prepare_incoming(
            {"instance_id": instance_id, "ip": instance.ip, "mac": instance.mac})
        result = {"xml": None}
        try:
            result = peers.hosts(source).migrate_domain({
                "instance_id": instance_id, "uri": incoming["migration_uri"],
                "address": incoming["migration_address"], "disk_path": disk["path"],
                "console_path": incoming["console_path"], "ssh_port": incoming["ssh_port"],
                "disk_format": incoming.get("disk_format")})
        finally:
            # Asked even when the call failed: a reply lost after libvirt finished must not be taken
            # for a guest left on the source.
            arrived = _arrived(peers, destination, instance_id, result.get("xml"), live)
        if arrived is None:
            raise Conflict(f"the guest did not arrive on {destination}")
    except Exception as exc:  # the guest is on the source: what the destination got goes
        if arrived is None:
            return _fail_back(session, instance_id, source, destination, peers, describe_failure(exc), live)
        log.warning("migration of %s: %s (the guest runs on %s)", instance_id, exc, destination)
    try:
        peers.hosts(destination).set_domain_shares(shares.host_request(instance, flavor))
        peers.storage.complete_root_disk_move({"instance_id": instance_id, "source": source,
                                               "destination": destination, "path": disk["path"]})
        peers.hosts(source).destroy_domain({"instance_id": instance_id, "keep_sessions": True})
        peers.network.place_address({"owner": instance_id, "host": destination})
    except Exception as exc:  # the guest runs on the destination; something of the move is not done
        return _end(session, instance_id, source, destination, arrived, now,
                    f"migrated to {destination}, but: {describe_failure(exc)}")
    return _end(session, instance_id, source, destination, arrived, now, timing=_timing(result))


def _timing(result):
    """For the action log: how long the source agent's migrate3 call took and the downtime libvirt
    recorded for the switch-over: 'migrate3 2.41 s, downtime 59 ms'."""
    parts = []
    if result.get("total_ms") is not None:
        parts.append(f"migrate3 {result['total_ms'] / 1000:.2f} s")
    if result.get("downtime_ms") is not None:
        parts.append(f"downtime {result['downtime_ms']} ms")
    return ", ".join(parts) or None


def _arrived(peers, destination, instance_id, xml, live):
    """The destination's report of the guest (there, its SSH port recorded), or None when the guest
    is not there."""
    try:
        return peers.hosts(destination).finish_incoming({"instance_id": instance_id, "xml": xml, "start": live})
    except Exception as exc:  # not there (or the host cannot say): treated as not moved
        log.info("migration of %s: not on %s: %s", instance_id, destination, describe_failure(exc))
        return None


def _end(session, instance_id, source, destination, report, now, problem=None, timing=None):
    """The instance is on the destination now: running or stopped as it arrived (or `error` with
    `problem`); the action log's message gets the timing."""
    if problem:
        step = "saga:migrated_broken"
    else:
        step = "saga:migrated_running" if report["state"] in ("running", "blocked") else "saga:migrated_stopped"
    values = dict(host=destination, migrating_to=None, ssh_port=report.get("ssh_port"), reason=problem,
                  host_state=report["state"], host_seq=report["seq"])
    moved = instance_store.move(session, instance_id, step, commit=False, **values)
    if moved is None:   # deleted meanwhile: its teardown covers both hosts
        session.rollback()
        return None
    scheduler.add_to_host(session, source, instance_id, -1)
    message = problem or (f"{source} -> {destination}" + (f": {timing}" if timing else ""))
    instance_store.finish_action(session, instance_id, ACTION, "error" if problem else "success", message)
    return moved


def _fail_back(session, instance_id, source, destination, peers, reason, live):
    log.warning("migration of %s to %s failed, undoing: %s", instance_id, destination, reason)
    session.rollback()
    left = []
    for undo in (lambda: peers.hosts(destination).destroy_domain({"instance_id": instance_id}),
                 lambda: peers.storage.abort_root_disk_move({"instance_id": instance_id, "host": destination}),
                 lambda: peers.network.place_address({"owner": instance_id, "host": source})):
        try:
            undo()
        except Exception as exc:  # reconcile removes what is left: an orphan on the destination
            left.append(describe_failure(exc))
    message = f"migration to {destination} failed: {reason}; the guest stays on {source}"
    if left:
        message += f" (cleanup on {destination} incomplete: {'; '.join(left)})"
    moved = instance_store.move(session, instance_id, "saga:migrated_running" if live else "saga:migrated_stopped",
                                commit=False, migrating_to=None, reason=message)
    if moved is None:
        session.rollback()
        return None
    scheduler.add_to_host(session, destination, instance_id, -1)
    instance_store.finish_action(session, instance_id, ACTION, "error", message)
    return moved
