"""Resize on a real migrated database with the host faked: cold (stopped), live (running, same
vCPUs and disk, memory within what it started with), restart (confirmed, a saga through
`resizing`), and what is refused: disks never shrink, an unconfirmed restart, another's instance,
a busy one, what does not fit the quota or the host. Host failures put the old flavor back."""
import pytest
from sqlalchemy import update

from common.errors import Conflict, Forbidden, HostOperationFailed, InvalidInput, NotFound, QuotaExceeded
from services.instances import resize, scheduler, shares
from services.instances.models import Flavor, Instance
from tests.instances.fakes import (
    ACTOR, ADMIN, CLASSMATE, NOW, POLICY, TEACHER, FakeCloud, flavor_named, limits_of, running_instance)

UNLIMITED = limits_of()


def growable(_instance_id):
    return {"growable": True, "reason": None}


def ask(session, cloud, inst, flavor_name, actor=ACTOR, limits=UNLIMITED, confirm=False, growth=growable):
    """What the service's resize_instance does with the fakes."""
    request = {"flavor": flavor_named(session, flavor_name).id, "confirm_restart": confirm}
    instance, mode, before = resize.request_resize(session, actor, inst.id, request, limits, POLICY, growth)
    if mode in ("cold", "live"):
        instance = resize.apply_now(session, instance, mode, before, cloud.peers)
    elif mode == "restart":
        assert resize.run_restart(session, inst.id, cloud.peers, lambda: NOW) == "running"
        session.refresh(instance)
    return instance, mode


def add_flavor(session, **values):
    flavor = Flavor(**dict({"cpu_weight": 256, "cpu_cap_percent": 0}, **values))
    session.add(flavor)
    session.commit()
    return flavor


def stop(session, cloud, inst):
    session.execute(update(Instance).where(Instance.id == inst.id).values(state="stopped"))
    session.commit()
    cloud.domains[inst.id]["state"] = "shutoff"


def test_a_stopped_instance_takes_any_larger_flavor_at_once(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud, flavor_name="small")
    stop(session, cloud, inst)
    resized, mode = ask(session, cloud, inst, "large")
    large = flavor_named(session, "large")
    assert mode == "cold" and resized.state == "stopped" and resized.flavor_id == large.id
    assert resized.memory_mib == large.memory_mib
    domain = cloud.domains[inst.id]
    assert (domain["vcpus"], domain["max_memory_mib"], domain["memory_mib"]) == (2, large.max_memory_mib, 512)
    assert cloud.disks[inst.id]["size_gib"] == large.disk_gib
    assert scheduler.stored_allocations(session) == {h: v for h, v in scheduler.counted_allocations(session).items()}
    [entry] = [a for a in resize.instance_store.list_actions(session, inst.id) if a.action == "resize"]
    assert entry.result == "success" and entry.message == "flavor small -> large (cold)"


def test_a_running_instance_resizes_live_within_what_it_started_with(session):
    cloud = FakeCloud()
    lean = add_flavor(session, name="lean", vcpus=1, memory_mib=96, max_memory_mib=192, disk_gib=1)
    inst = running_instance(session, cloud, flavor_name="small")    # 1 vCPU, 128 of 256 MiB, 1 GiB
    resized, mode = ask(session, cloud, inst, "lean")
    assert mode == "live" and resized.state == "running" and resized.flavor_id == lean.id
    assert cloud.domains[inst.id]["memory_mib"] == 96 and cloud.domains[inst.id]["state"] == "running"
    assert ("stop_domain", inst.id) not in [(c[0], c[1]) for c in cloud.calls if len(c) > 1]


def test_a_restart_is_only_made_when_confirmed(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud, flavor_name="small")
    with pytest.raises(Conflict) as err:
        ask(session, cloud, inst, "large")
    assert set(err.value.fields) == {"confirm_restart"}
    session.refresh(inst)
    assert inst.flavor_id == flavor_named(session, "small").id and inst.state == "running"
    resized, mode = ask(session, cloud, inst, "large", confirm=True)
    assert mode == "restart" and resized.state == "running" and resized.flavor_id == flavor_named(session, "large").id
    assert cloud.domains[inst.id]["vcpus"] == 2 and cloud.domains[inst.id]["state"] == "running"
    assert cloud.disks[inst.id]["size_gib"] == 4
    # A redelivered event finds it settled: nothing happens again.
    assert resize.run_restart(session, inst.id, cloud.peers, lambda: NOW) is None


def test_the_cap_stays_within_the_new_vcpus_and_weight_and_bandwidth_stay(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud, flavor_name="large")
    session.execute(update(Instance).where(Instance.id == inst.id).values(
        cpu_cap=180, cpu_weight=900, bandwidth_out_kib=77))
    session.commit()
    stop(session, cloud, inst)
    add_flavor(session, name="one", vcpus=1, memory_mib=256, max_memory_mib=512, disk_gib=4)
    resized, _mode = ask(session, cloud, inst, "one")
    assert (resized.cpu_cap, resized.cpu_weight, resized.bandwidth_out_kib) == (100, 900, 77)


@pytest.mark.parametrize("target,field", [("small", "flavor")])
def test_disks_never_shrink(session, target, field):
    cloud = FakeCloud()
    inst = running_instance(session, cloud, flavor_name="large")
    stop(session, cloud, inst)
    with pytest.raises(InvalidInput) as err:
        ask(session, cloud, inst, target)
    assert set(err.value.fields) == {field}


@pytest.mark.parametrize("running", [False, True])
def test_a_root_disk_that_cannot_grow_is_refused_before_anything_changes(session, running):
    """A root disk on a logical pool (an LVM snapshot of its image) keeps its size: a flavor with a
    larger disk is refused up front, naming the flavor, the guest untouched (not stopped first)."""
    cloud = FakeCloud()
    inst = running_instance(session, cloud, flavor_name="small")
    if not running:
        stop(session, cloud, inst)
    asked = []

    def snapshot_disk(instance_id):
        asked.append(instance_id)
        return {"growable": False, "reason": "it is an LVM snapshot of its image"}
    with pytest.raises(Conflict) as refused:
        ask(session, cloud, inst, "large", confirm=True, growth=snapshot_disk)
    assert set(refused.value.fields) == {"flavor"} and "LVM snapshot" in str(refused.value)
    assert asked == [inst.id]
    session.refresh(inst)
    assert inst.flavor_id == flavor_named(session, "small").id
    assert inst.state == ("running" if running else "stopped")
    assert cloud.domains[inst.id]["state"] == ("running" if running else "shutoff")


def test_who_may_resize(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud, flavor_name="small")
    stop(session, cloud, inst)
    with pytest.raises(NotFound):
        ask(session, cloud, inst, "medium", actor=CLASSMATE)
    with pytest.raises(Forbidden):
        ask(session, cloud, inst, "medium", actor=TEACHER)
    assert ask(session, cloud, inst, "medium", actor=ADMIN)[0].flavor_id == flavor_named(session, "medium").id


@pytest.mark.parametrize("state", ["pending", "stopping", "rebooting", "error", "deleting"])
def test_busy_or_broken_instances_are_409(session, state):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    session.execute(update(Instance).where(Instance.id == inst.id).values(state=state))
    session.commit()
    with pytest.raises(Conflict) as err:
        ask(session, cloud, inst, "medium")
    assert err.value.fields == {"state": [f"is {state}; resize needs running or stopped"]}


def test_growth_of_a_running_instance_is_charged_and_must_fit_the_host(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud, flavor_name="small")
    limits = limits_of({"project": {"vcpus": 1}, "user": {}})
    with pytest.raises(QuotaExceeded) as err:
        ask(session, cloud, inst, "large", limits=limits, confirm=True)
    assert set(err.value.fields) == {"vcpus"}
    session.refresh(inst)
    assert inst.state == "running" and inst.flavor_id == flavor_named(session, "small").id
    # The conftest's host has 512 MiB: large (512) beside another small (128) does not fit.
    running_instance(session, cloud, "other", "small")
    with pytest.raises(Conflict) as err:
        ask(session, cloud, inst, "large", confirm=True)
    assert err.value.fields == {"flavor": [f"does not fit host {inst.host}"]}
    assert scheduler.stored_allocations(session) == scheduler.counted_allocations(session)


def test_a_host_failure_puts_the_old_flavor_back(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud, flavor_name="small")
    stop(session, cloud, inst)
    before = (inst.flavor_id, shares.current(inst))
    cloud.fail_on = "set_domain_shares"
    with pytest.raises(HostOperationFailed):
        ask(session, cloud, inst, "medium")
    session.refresh(inst)
    assert (inst.flavor_id, shares.current(inst)) == before and inst.state == "stopped"
    assert scheduler.stored_allocations(session) == scheduler.counted_allocations(session)
    [entry] = [a for a in resize.instance_store.list_actions(session, inst.id) if a.action == "resize"]
    assert entry.result == "error" and "exploded" in entry.message


def test_a_restart_that_fails_leaves_it_in_error_with_the_reason(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud, flavor_name="small")
    cloud.fail_on = "start_domain"
    request = {"flavor": flavor_named(session, "large").id, "confirm_restart": True}
    resize.request_resize(session, ACTOR, inst.id, request, UNLIMITED, POLICY)
    assert resize.run_restart(session, inst.id, cloud.peers, lambda: NOW) == "error"
    session.refresh(inst)
    assert inst.reason.startswith("resize failed: ") and "exploded" in inst.reason
