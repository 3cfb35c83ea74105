"""Reconcile on a real migrated database against the in-memory cloud: drift, lost domains, orphans
after their grace period, released addresses, hosts going quiet and coming back, leases."""
import datetime as dt
import json
import uuid

from sqlalchemy import update

from services.instances import instance_store, lifecycle, reconcile, scheduler
from services.instances.models import Instance
from tests.instances.fakes import ACTOR, NOW, POLICY, FakeCloud, new_instance, running_instance

SETTINGS = {"orphan_grace": 60.0, "delete_retry_after": 30.0, "stuck_after": 600.0, "lease": 120.0}


def at(seconds):
    return NOW + dt.timedelta(seconds=seconds)


def heartbeat(session, when):
    scheduler.record_heartbeat(session, {"host": "h1", "hypervisor": "TEST", "vcpus": 4, "memory_mib": 512},
                               when, POLICY)


def run(session, cloud, when, holder="replica-a", retried=None):
    peers = reconcile.Peers(cloud.peers.hosts, cloud.peers.storage, cloud.peers.network,
                            (retried if retried is not None else []).append)
    report = reconcile.run(session, peers, holder, "timer", when, POLICY, SETTINGS)
    return [(f["kind"], f["action"]) for f in json.loads(report.findings)], report


def state_of(session, inst):
    session.expire_all()
    return session.get(Instance, inst.id)


def test_a_guest_that_drifted_is_corrected_and_logged(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    cloud.domains[inst.id]["state"] = "shutoff"  # powered off behind our back, its event lost
    findings, report = run(session, cloud, NOW)
    assert ("instance", "state_corrected") in findings and report.hosts == "h1"
    assert state_of(session, inst).state == "stopped"
    [*_, entry] = instance_store.list_actions(session, inst.id)
    assert (entry.action, entry.username, entry.result) == ("reconcile", None, "success")
    assert "running -> stopped" in entry.message
    assert run(session, cloud, NOW)[0] == []  # nothing more to do


def test_an_instance_whose_domain_is_gone_is_an_error_with_the_reason(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    del cloud.domains[inst.id]
    findings, _ = run(session, cloud, NOW)
    assert ("instance", "lost_domain") in findings
    instance = state_of(session, inst)
    assert instance.state == "error" and instance.reason == "host h1 has no domain for this instance"
    run(session, cloud, NOW)
    assert state_of(session, inst).state == "error"  # an older report of it running cannot revive it
    lifecycle.request_delete(session, ACTOR, inst.id)  # and a delete cleans up the rest


def test_orphans_are_removed_after_the_grace_period(session):
    cloud = FakeCloud()
    kept = running_instance(session, cloud)
    stray_domain, stray_disk, stray_leftovers = (str(uuid.uuid4()) for _ in range(3))
    cloud.domains[stray_domain] = {"state": "running"}
    cloud.disks[stray_disk] = {"id": 99, "path": f"/pool/root-{stray_disk}.qcow2"}
    cloud.leftovers.add(stray_leftovers)

    findings, _ = run(session, cloud, NOW)
    assert sorted(f for f in findings if f[1] == "orphan_seen") == [
        ("domain", "orphan_seen"), ("leftovers", "orphan_seen"), ("volume", "orphan_seen")]
    heartbeat(session, at(30))
    findings, _ = run(session, cloud, at(30))
    assert [a for _, a in findings] == ["orphan_waiting"] * 3
    assert stray_domain in cloud.domains  # not yet: a create may be making it

    heartbeat(session, at(61))
    findings, _ = run(session, cloud, at(61))
    assert sorted(findings) == [("domain", "orphan_removed"), ("leftovers", "orphan_removed"),
                                ("volume", "orphan_removed")]
    assert set(cloud.domains) == {kept.id} and set(cloud.disks) == {kept.id} and not cloud.leftovers
    assert ("delete_orphan_volume", f"root-{stray_disk}.qcow2") in cloud.calls
    assert state_of(session, kept).state == "running"


def test_data_volumes_and_snapshots_no_record_owns_are_removed_after_the_grace_period(session):
    cloud = FakeCloud()
    stray_data, stray_snap, kept_data = (f"{kind}-{uuid.uuid4()}.qcow2" for kind in ("data", "snap", "data"))
    cloud.storage_volumes.update({stray_data: False, stray_snap: False, kept_data: True,
                                  "someone-elses.img": False})  # not a labcloud name: never touched
    findings, _ = run(session, cloud, NOW)
    assert sorted(findings) == [("storage_volume", "orphan_seen")] * 2
    [(_, asked)] = [c for c in cloud.calls if c[0] == "check_host_volumes"]
    assert sorted(asked) == sorted(["image-1.qcow2", stray_data, stray_snap, kept_data])
    heartbeat(session, at(61))
    cloud.storage_volumes[stray_snap] = "late"  # a record owns it by the time it is removed: kept
    findings, _ = run(session, cloud, at(61))
    assert sorted(findings) == [("storage_volume", "orphan_kept"), ("storage_volume", "orphan_removed")]
    assert set(cloud.storage_volumes) == {"image-1.qcow2", stray_snap, kept_data, "someone-elses.img"}


def test_a_volume_missing_on_its_host_is_reported(session):
    cloud = FakeCloud()
    cloud.missing_volumes = [7]
    findings, report = run(session, cloud, NOW)
    assert ("storage_volume", "missing") in findings
    assert [f["subject"] for f in json.loads(report.findings) if f["action"] == "missing"] == ["7"]


def test_an_orphan_that_goes_away_by_itself_is_forgotten(session):
    cloud = FakeCloud()
    stray = str(uuid.uuid4())
    cloud.domains[stray] = {"state": "running"}
    run(session, cloud, NOW)
    del cloud.domains[stray]
    assert run(session, cloud, NOW)[0] == []
    cloud.domains[stray] = {"state": "running"}  # back: its grace period starts again
    heartbeat(session, at(61))
    assert run(session, cloud, at(61))[0] == [("domain", "orphan_seen")]


def test_addresses_of_no_live_instance_are_released(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    cloud.peers.network.allocate_address({"owner": "gone-instance"})
    run(session, cloud, NOW)
    heartbeat(session, at(61))
    findings, _ = run(session, cloud, at(61))
    assert ("address", "orphan_removed") in findings
    assert set(cloud.addresses) == {inst.id}


def test_a_quiet_host_shows_its_instances_host_down_until_it_returns(session):
    cloud = FakeCloud()
    running = running_instance(session, cloud, "a")
    stopped = running_instance(session, cloud, "b")
    lost = running_instance(session, cloud, "c")
    session.execute(update(Instance).where(Instance.id == stopped.id).values(state="stopped"))
    session.commit()
    cloud.domains[stopped.id]["state"] = "shutoff"

    findings, _ = run(session, cloud, at(60))  # no heartbeat for a minute
    assert findings.count(("instance", "host_down")) == 3
    for inst in (running, stopped, lost):
        instance = state_of(session, inst)
        assert instance.state == "host_down" and "has sent no heartbeat since" in instance.reason
    assert cloud.domains and cloud.addresses, "nothing is deleted while the host is away"

    del cloud.domains[lost.id]  # the host came back without this one
    heartbeat(session, at(61))
    run(session, cloud, at(61))
    assert state_of(session, running).state == "running"
    assert state_of(session, stopped).state == "stopped"
    assert state_of(session, lost).state == "error"


def test_a_run_that_read_the_host_before_it_went_quiet_cannot_undo_its_host_down(session):
    # A run began at 1 s (the host fresh) and read its inventory; it was slow (a busy machine), and
    # meanwhile the host went quiet and another replica marked the instance host_down at 61 s. What
    # the slow run saw is older than that: the instance stays host_down until the host returns.
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    heartbeat(session, at(0))
    peers = reconcile.Peers(cloud.peers.hosts, cloud.peers.storage, cloud.peers.network, [].append)
    inventory = cloud.peers.hosts("h1").get_inventory()
    assert reconcile.mark_hosts_down(session, at(61), POLICY) == [inst.id]
    reconcile.reconcile_host(session, "h1", inventory, at(1), SETTINGS, peers, reconcile.Report())
    assert state_of(session, inst).state == "host_down"
    heartbeat(session, at(62))   # it returns: its own run brings the instance back
    reconcile.reconcile_host(session, "h1", cloud.peers.hosts("h1").get_inventory(), at(62), SETTINGS, peers,
                             reconcile.Report())
    assert state_of(session, inst).state == "running"


def test_a_replica_that_saw_the_host_quiet_cannot_undo_a_heartbeat_recorded_since(session):
    # Two replicas: one read the host as quiet (its clock at 60 s); before it moved the instance,
    # the other recorded a heartbeat and the host_returned reconcile ran. The move checks the host
    # again in its own UPDATE, so the older view changes nothing.
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    quiet_view = scheduler.is_quiet_clause("h1", at(60), POLICY)
    assert instance_store.move(session, inst.id, "host:down", reason="r", also_if=quiet_view) == "host_down"
    heartbeat(session, at(61))
    assert instance_store.move(session, inst.id, "host:running") == "running"
    assert instance_store.move(session, inst.id, "host:down", reason="r", also_if=quiet_view) is None
    assert state_of(session, inst).state == "running"


def test_a_delete_that_did_not_finish_is_run_again(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    lifecycle.request_delete(session, ACTOR, inst.id)
    retried = []
    session.execute(update(Instance).where(Instance.id == inst.id).values(state_changed_at=NOW))
    session.commit()
    run(session, cloud, at(10), retried=retried)
    assert retried == []  # its saga may still be working
    heartbeat(session, at(31))
    findings, _ = run(session, cloud, at(31), retried=retried)
    assert retried == [inst.id] and ("instance", "delete_retried") in findings


def test_a_saga_that_never_finished_becomes_an_error(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    session.execute(update(Instance).where(Instance.id == inst.id).values(state="stopping", state_changed_at=NOW))
    session.commit()
    heartbeat(session, at(601))
    findings, _ = run(session, cloud, at(601))
    assert ("instance", "stuck") in findings
    assert state_of(session, inst).reason == "stopping did not finish within 600 s"
    run(session, cloud, at(601))  # next round: the host says it runs, so it runs
    assert state_of(session, inst).state == "running"


def test_one_replica_at_a_time_works_on_a_host(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    cloud.domains[inst.id]["state"] = "shutoff"
    assert reconcile.claim_host(session, "h1", "replica-b", NOW, 120)
    findings, report = run(session, cloud, NOW, holder="replica-a")
    assert findings == [("host", "skipped")] and report.hosts == ""
    assert state_of(session, inst).state == "running"  # replica-b holds it: a leaves it alone
    reconcile.release_host(session, "h1", "replica-b")
    run(session, cloud, NOW, holder="replica-a")
    assert state_of(session, inst).state == "stopped"
    # A lease whose replica died expires: after it, another replica works on the host again.
    assert reconcile.claim_host(session, "h1", "replica-b", NOW, 120)
    cloud.domains[inst.id]["state"] = "running"
    heartbeat(session, at(60))
    assert run(session, cloud, at(60), holder="replica-a")[0] == [("host", "skipped")]
    heartbeat(session, at(121))
    run(session, cloud, at(121), holder="replica-a")
    assert state_of(session, inst).state == "running"
    assert reconcile.claim_host(session, "h1", "replica-c", at(121), 120)  # a released it when done


def test_a_pending_instance_is_left_to_its_saga(session):
    cloud = FakeCloud()
    inst = new_instance(session)
    assert run(session, cloud, NOW)[0] == []
    assert state_of(session, inst).state == "pending"


def test_a_restarted_agent_counts_as_a_returning_host(session):
    """`labcloud run` stopped and started again within HOST_STALE_AFTER: no heartbeat was missed
    for long, but the agent is new, so its host's instances must be checked at once."""
    beat = {"host": "h1", "hypervisor": "TEST", "vcpus": 4, "memory_mib": 512}
    assert scheduler.record_heartbeat(session, dict(beat, agent_started=1), at(1), POLICY)[1] is True
    assert scheduler.record_heartbeat(session, dict(beat, agent_started=1), at(2), POLICY)[1] is False
    assert scheduler.record_heartbeat(session, dict(beat, agent_started=2), at(3), POLICY)[1] is True
    assert scheduler.record_heartbeat(session, beat, at(4), POLICY)[1] is False  # an older agent says nothing
    assert scheduler.record_heartbeat(session, beat, at(60), POLICY)[1] is True  # quiet for a minute
