"""Reconcile: compare what each host runs with the database and repair the drift (Nova's
`_sync_power_states` and orphan reaping).

Per host, under a lease so that with several replicas only one works on a host (and so on its
instances) at a time:
- a host without fresh heartbeats: its settled instances are shown `host_down` (not deleted);
- otherwise its inventory (domains, volumes, DHCP entries, forwards, console logs) is read:
  - an instance whose guest's power state drifted follows the host's report;
  - an instance whose domain is gone goes to `error` with the reason;
  - a delete that did not finish is run again; a saga that never finished is shown as `error`;
  - anything no live instance owns (a domain, a root disk, DHCP entry/forward/console log) is
    removed once it has been seen for the grace period (a create may be making it right now);
  - so is a data volume, snapshot or image copy no storage record owns (the storage service
    says which, and checks again before it deletes);
- addresses whose owner is no live instance are released after the same grace period.
Everything found is kept in a report; repairs of an instance also go into its action log.
"""
import datetime as dt
import json
import logging
import re

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from services.instances import instance_store, scheduler, states
from services.instances.models import Host, Instance, Orphan, ReconcileReport
from services.storage.schemas import STORAGE_VOLUME_NAME

log = logging.getLogger(__name__)
ROOT_VOLUME = re.compile(r"^root-([0-9a-f-]{36})(?:\.qcow2)?$")  # a dir pool's file, a logical pool's LV
STORAGE_VOLUME = re.compile(STORAGE_VOLUME_NAME)
DEFAULTS = {"orphan_grace": 300.0, "delete_retry_after": 30.0, "stuck_after": 900.0, "lease": 120.0,
            "inventory_timeout": 20.0}


def settings_from_config(config):
    return {"orphan_grace": float(config.get("ORPHAN_GRACE", DEFAULTS["orphan_grace"])),
            "delete_retry_after": float(config.get("DELETE_RETRY_AFTER", DEFAULTS["delete_retry_after"])),
            "stuck_after": float(config.get("STUCK_AFTER", DEFAULTS["stuck_after"])),
            "lease": float(config.get("RECONCILE_LEASE", DEFAULTS["lease"]))}


class Peers:
    """What reconcile talks to: host agents, storage, network, and a way to re-run a delete."""

    def __init__(self, hosts, storage, network, retry_delete):
        self.hosts, self.storage, self.network, self.retry_delete = hosts, storage, network, retry_delete


class Report:
    def __init__(self):
        self.findings, self.hosts = [], []

    def add(self, host, kind, subject, action, detail=""):
        finding = {"host": host, "kind": kind, "subject": subject, "action": action, "detail": detail}
        self.findings.append(finding)
        log.info("reconcile: %s", finding)


# ----- leases ---------------------------------------------------------------------------------

def claim_host(session, host_name, holder, now, lease_s):
    """Compare-and-set on the host's lease: True if this replica may reconcile the host now."""
    result = session.execute(update(Host).where(
        Host.name == host_name,
        or_(Host.reconcile_lease_until.is_(None), Host.reconcile_lease_until < now,
            Host.reconcile_lease_holder == holder))
        .values(reconcile_lease_until=now + dt.timedelta(seconds=lease_s), reconcile_lease_holder=holder))
    session.commit()
    return result.rowcount == 1


def release_host(session, host_name, holder):
    session.execute(update(Host).where(Host.name == host_name, Host.reconcile_lease_holder == holder)
                    .values(reconcile_lease_until=None, reconcile_lease_holder=None))
    session.commit()


# ----- hosts that went quiet ------------------------------------------------------------------

def mark_hosts_down(session, now, policy, report=None):
    """Settled instances of hosts without fresh heartbeats become `host_down`."""
    moved = []
    for host in session.scalars(select(Host)).all():
        if scheduler.is_up(host, now, policy):
            continue
        ids = session.scalars(select(Instance.id).where(
            Instance.host == host.name, Instance.state.in_(states.sources("host:down")))).all()
        since = f"{host.last_heartbeat:%Y-%m-%d %H:%M:%S}Z" if host.last_heartbeat else "ever"
        reason = f"host {host.name} has sent no heartbeat since {since}"
        for instance_id in ids:
            # Checked again in the UPDATE itself: a heartbeat recorded since the read above (and the
            # host_returned reconcile after it) must not be undone by this older view.
            if instance_store.move(session, instance_id, "host:down", reason=reason, now=now,
                                   also_if=scheduler.is_quiet_clause(host.name, now, policy)):
                _repaired(session, report, host.name, instance_id, "host_down", reason)
                moved.append(instance_id)
    return moved


# ----- one host -------------------------------------------------------------------------------

def reconcile_host(session, host_name, inventory, now, settings, peers, report):
    domains = {d["instance_id"]: d for d in inventory["domains"]}
    live = {i.id: i for i in session.scalars(select(Instance).where(
        Instance.host == host_name, Instance.state.not_in(["deleted", "pending"]))).all()}
    # What migrates here is not an orphan (its saga or its delete owns what is here of it).
    arriving = set(session.scalars(select(Instance.id).where(
        Instance.migrating_to == host_name, Instance.state.not_in(["deleted", "pending"]))).all())
    for instance in live.values():
        _check_instance(session, instance, domains.get(instance.id), inventory, now, settings, peers, report)
    seen = set()
    live_or_arriving = set(live) | arriving
    for instance_id in domains:
        if instance_id not in live_or_arriving:
            seen.add(("domain", instance_id))
    others = []
    for volume in inventory["volumes"]:
        match = ROOT_VOLUME.match(volume["name"])
        if match and match.group(1) not in live_or_arriving:
            seen.add(("volume", volume["name"]))
        elif not match and STORAGE_VOLUME.match(volume["name"]):
            others.append(volume["name"])
    # Data volumes, snapshots, image copies: the storage service knows their owners, and which
    # of its volumes should be there (`now` is older than the inventory).
    checked = peers.storage.check_host_volumes({"host": host_name, "names": others, "listed_at": now.isoformat()})
    seen.update(("storage_volume", name) for name in checked["unowned"])
    for volume_id in checked["missing_volumes"]:
        report.add(host_name, "storage_volume", str(volume_id), "missing", "the volume is now in error")
    leftovers = ({e["instance_id"] for e in inventory.get("dhcp_entries", []) if e.get("instance_id")}
                 | {f["instance_id"] for f in inventory.get("forwards", [])}
                 | set(inventory.get("console_logs", [])))
    for instance_id in leftovers:
        if instance_id not in live_or_arriving and instance_id not in domains:
            seen.add(("leftovers", instance_id))
    for kind, name in _due_orphans(session, host_name, seen, now, settings["orphan_grace"], report):
        _remove_orphan(host_name, kind, name, peers, report)


def _check_instance(session, instance, domain, inventory, now, settings, peers, report):
    host, age = instance.host, _age(instance, now)
    if instance.state == "deleting":
        if age >= settings["delete_retry_after"]:
            peers.retry_delete(instance.id)
            report.add(host, "instance", instance.id, "delete_retried", instance.reason or "")
        return
    if instance.state in states.IN_PROGRESS:
        if age >= settings["stuck_after"]:
            reason = f"{instance.state} did not finish within {int(settings['stuck_after'])} s"
            if instance_store.move(session, instance.id, "reconcile:stuck", reason=reason):
                _repaired(session, report, host, instance.id, "stuck", reason)
        return
    if domain is not None:
        instance_store.record_host_report(session, instance.id, domain["state"], domain["seq"])
    else:  # also for an `error` instance, so an older report of a running guest cannot revive it
        instance_store.record_host_report(session, instance.id, "missing", inventory["seq"])
    before = instance.state
    # A run whose inventory is older than a `host_down` (the host went quiet after the run began:
    # a slow run, a busy machine) must not undo it: the move needs the state to be older than the
    # run (checked in the UPDATE). The host's return brings a run of its own.
    also_if = or_(Instance.state != "host_down", Instance.state_changed_at <= now)
    after = instance_store.follow_host(session, instance.id, states.CORRECTABLE, also_if=also_if)
    if after is not None:
        message = f"host {host} reports the guest {domain['state'] if domain else 'has no domain'}: {before} -> {after}"
        _repaired(session, report, host, instance.id, "lost_domain" if domain is None else "state_corrected",
                  message)


def _repaired(session, report, host, instance_id, finding, message):
    """A repair of an instance goes into its action log and (when there is one) the run's report."""
    instance_store.record_finished_action(session, instance_id, "reconcile", "success", message)
    if report is not None:
        report.add(host, "instance", instance_id, finding, message)


def _age(instance, now):
    changed = instance.state_changed_at or instance.updated_at or instance.created_at
    return (now - changed).total_seconds() if changed else 0.0


def _due_orphans(session, host_name, seen, now, grace_s, report):
    """Remember when each orphan was first seen; return those seen for the grace period. Orphans no
    longer present are forgotten."""
    rows = {(o.kind, o.name): o for o in session.scalars(select(Orphan).where(Orphan.host == host_name))}
    for key, row in rows.items():
        if key not in seen:
            session.delete(row)
    due = []
    for kind, name in sorted(seen):
        row = rows.get((kind, name))
        if row is None:
            session.add(Orphan(host=host_name, kind=kind, name=name, first_seen=now))
            report.add(host_name, kind, name, "orphan_seen", f"removed after {int(grace_s)} s")
        elif (now - row.first_seen).total_seconds() >= grace_s:
            due.append((kind, name))
            session.delete(row)
        else:
            report.add(host_name, kind, name, "orphan_waiting", f"first seen {row.first_seen:%H:%M:%S}Z")
    try:
        session.commit()
    except IntegrityError:  # another replica recorded it first (leases make this rare)
        session.rollback()
    return due


def _remove_orphan(host_name, kind, name, peers, report):
    try:
        if kind == "volume":
            peers.storage.delete_orphan_volume({"host": host_name, "name": name})
        elif kind == "storage_volume":
            if peers.storage.delete_unowned_volume({"host": host_name, "name": name})["owned"]:
                report.add(host_name, kind, name, "orphan_kept", "a record owns it now")
                return
        else:  # a domain, or what a domain left (DHCP entry, forward, console log): one call
            peers.hosts(host_name).destroy_domain({"instance_id": name})
    except Exception as exc:  # noqa: BLE001  (reported; the next run tries again)
        report.add(host_name, kind, name, "orphan_remove_failed", str(exc))
        return
    log.warning("reconcile: removed orphan %s %s on %s", kind, name, host_name)
    report.add(host_name, kind, name, "orphan_removed")


# ----- addresses ------------------------------------------------------------------------------

def reconcile_addresses(session, now, settings, peers, report):
    live = set(session.scalars(select(Instance.id).where(Instance.state != "deleted")).all())
    seen = {("address", a["owner"]) for a in peers.network.list_addresses() if a["owner"] not in live}
    for _kind, owner in _due_orphans(session, "", seen, now, settings["orphan_grace"], report):
        peers.network.release_address({"owner": owner})
        report.add("", "address", owner, "orphan_removed")


# ----- a whole run ----------------------------------------------------------------------------

def run(session, peers, holder, trigger, now, policy, settings, only_host=None):
    """One reconcile run over every known host (or one). Returns the stored report row."""
    if trigger == "host_returned":
        # Deletes that waited for this host run again now (a delete saga still under way would
        # only repeat idempotent steps).
        settings = dict(settings, delete_retry_after=0.0)
    report = Report()
    row = ReconcileReport(started_at=now, replica=holder, trigger=trigger)
    mark_hosts_down(session, now, policy, report)
    names = [only_host] if only_host else session.scalars(select(Host.name).order_by(Host.name)).all()
    for name in names:
        if not scheduler.host_is_up(session, name, now, policy):
            continue
        if not claim_host(session, name, holder, now, settings["lease"]):
            report.add(name, "host", name, "skipped", "another replica is reconciling it")
            continue
        try:
            inventory = peers.hosts(name).get_inventory()
            reconcile_host(session, name, inventory, now, settings, peers, report)
            report.hosts.append(name)
        except Exception as exc:  # noqa: BLE001  (one host's failure must not stop the others)
            session.rollback()
            report.add(name, "host", name, "failed", str(exc))
        finally:
            release_host(session, name, holder)
    if only_host is None:
        try:
            reconcile_addresses(session, now, settings, peers, report)
        except Exception as exc:  # noqa: BLE001
            session.rollback()
            report.add("", "network", "addresses", "failed", str(exc))
        # The hosts' allocation counters against a recount of the instance rows (they change in
        # the transactions of the instance changes; this catches anything that slipped past).
        for host, stored, counted in scheduler.recount_allocations(session):
            report.add(host, "host", host, "allocation_corrected",
                       f"counters (vcpus, memory_mib, disk_gib, instances) were {stored}, recounted {counted}")
    row.hosts, row.findings = ",".join(report.hosts), json.dumps(report.findings)
    row.finished_at = now
    session.add(row)
    session.commit()
    _forget_old_reports(session)
    return row


def _forget_old_reports(session, keep=200):
    newest = session.scalars(select(ReconcileReport.id).order_by(ReconcileReport.id.desc())
                             .offset(keep).limit(1)).first()
    if newest is not None:
        session.execute(delete(ReconcileReport).where(ReconcileReport.id <= newest))
        session.commit()


def list_reports(session, limit=20):
    return session.scalars(select(ReconcileReport).order_by(ReconcileReport.id.desc()).limit(limit)).all()
