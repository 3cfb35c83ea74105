"""Changing an instance's resource shares (share_changes.py) on a real migrated database, with the
host faked: who may, in which states, the limits that depend on the flavor, the quota on memory
growth, and a host failure that leaves record and guest as they were."""
import pytest
from sqlalchemy import update

from common.errors import Conflict, Forbidden, HostOperationFailed, InvalidInput, NotFound, QuotaExceeded
from common.schemas import load
from services.instances import quotas, scheduler, share_changes, shares
from services.instances.models import Instance
from services.instances.schemas import SetResourcesRequest
from tests.instances.fakes import (
    ACTOR, ADMIN, CLASSMATE, POLICY, PROJECT, TEACHER, FakeCloud, flavor_named, limits_of, new_instance, running_instance)

UNLIMITED = limits_of()


def change(session, cloud, inst, actor=ACTOR, limits=UNLIMITED, **request):
    return share_changes.set_shares(session, actor, inst.id, load(SetResourcesRequest, request), limits,
                                    lambda host: cloud.host, POLICY)


def test_new_instances_take_their_flavors_defaults(session):
    inst = new_instance(session, "d", "small")
    small = flavor_named(session, "small")
    assert shares.current(inst) == {"cpu_weight": small.cpu_weight, "cpu_cap": small.cpu_cap_percent,
                                    "memory_mib": small.memory_mib, "bandwidth_in_kib": 0,
                                    "bandwidth_out_kib": 0}
    assert small.max_memory_mib == 2 * small.memory_mib


def test_the_owner_changes_a_running_guest_and_the_host_gets_absolute_values(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud, flavor_name="large")   # 2 vCPUs, 512 of 1024 MiB
    after = change(session, cloud, inst, cpu_weight=512, cpu_cap=150, memory_mib=384,
                   bandwidth_in_kib=512, bandwidth_out_kib=1024)
    expected = {"cpu_weight": 512, "cpu_cap": 150, "memory_mib": 384, "bandwidth_in_kib": 512,
                "bandwidth_out_kib": 1024}
    assert shares.current(after) == expected
    domain = cloud.domains[inst.id]
    assert {k: domain[k] for k in expected} == expected
    assert domain["vcpus"] == 2 and domain["max_memory_mib"] == 1024
    # Asking again for what it has changes nothing and does not call the host.
    calls = len(cloud.calls)
    change(session, cloud, inst, cpu_weight=512)
    assert len(cloud.calls) == calls
    # Fields not named keep their values.
    assert shares.current(change(session, cloud, inst, cpu_cap=0)) == {**expected, "cpu_cap": 0}


def test_an_admin_may_and_a_classmate_or_teacher_may_not(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    assert change(session, cloud, inst, actor=ADMIN, cpu_weight=1000).cpu_weight == 1000
    with pytest.raises(NotFound):
        change(session, cloud, inst, actor=CLASSMATE, cpu_weight=1)
    with pytest.raises(Forbidden) as err:   # the teacher sees the instance: told why, not 404
        change(session, cloud, inst, actor=TEACHER, cpu_weight=1)
    assert str(err.value) == "only an administrator or its owner may change an instance's resources"
    session.refresh(inst)
    assert inst.cpu_weight == 1000


@pytest.mark.parametrize("request_,field", [
    ({"cpu_cap": 101}, "cpu_cap"),          # small has 1 vCPU: at most 100
    ({"memory_mib": 257}, "memory_mib"),    # small's maximum is 256
])
def test_limits_of_the_flavor_name_the_field(session, request_, field):
    cloud = FakeCloud()
    inst = running_instance(session, cloud, flavor_name="small")
    with pytest.raises(InvalidInput) as err:
        change(session, cloud, inst, **request_)
    assert set(err.value.fields) == {field}
    assert ("set_domain_shares", inst.id) not in cloud.calls


@pytest.mark.parametrize("request_,field", [
    ({"cpu_weight": 0}, "cpu_weight"), ({"cpu_weight": 65537}, "cpu_weight"), ({"cpu_cap": -1}, "cpu_cap"),
    ({"memory_mib": 32}, "memory_mib"), ({"bandwidth_in_kib": -5}, "bandwidth_in_kib"),
    ({"bandwidth_out_kib": "fast"}, "bandwidth_out_kib"), ({"colour": "red"}, "colour"), ({}, "_schema"),
])
def test_the_request_schema_names_the_field(request_, field):
    with pytest.raises(InvalidInput) as err:
        load(SetResourcesRequest, request_)
    assert set(err.value.fields) == {field}


def test_memory_growth_of_a_running_guest_is_charged_to_the_quota(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud, flavor_name="small")   # 128 MiB
    limits = limits_of({"project": {"memory_mib": 200}, "user": {}})
    with pytest.raises(QuotaExceeded) as err:
        change(session, cloud, inst, limits=limits, memory_mib=256)
    assert err.value.fields == {"memory_mib": ["project limit 200, in use 128, requested 128"]}
    session.refresh(inst)
    assert inst.memory_mib == 128 and cloud.domains[inst.id]["memory_mib"] == 128
    assert change(session, cloud, inst, limits=limits, memory_mib=200).memory_mib == 200
    assert quotas.project_usage(session, PROJECT)["project"]["memory_mib"] == 200
    # Shrinking takes nothing: the limits are not even asked.

    def no_limits(project_id, user_id):
        raise AssertionError("limits asked for a change that takes nothing")
    assert change(session, cloud, inst, limits=no_limits, memory_mib=64).memory_mib == 64


def test_a_stopped_instance_changes_its_definition_and_takes_no_quota_until_started(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    session.execute(update(Instance).where(Instance.id == inst.id).values(state="stopped"))
    session.commit()
    cloud.domains[inst.id]["state"] = "shutoff"

    def no_limits(project_id, user_id):
        raise AssertionError("a stopped instance uses no compute quota")
    assert change(session, cloud, inst, limits=no_limits, memory_mib=256).memory_mib == 256
    assert cloud.domains[inst.id]["memory_mib"] == 256
    assert quotas.growth(flavor_named(session, "small"), "stopped", "starting", 256)["memory_mib"] == 256


@pytest.mark.parametrize("state", ["pending", "building", "stopping", "rebooting", "deleting", "error"])
def test_busy_or_broken_instances_answer_409_naming_the_state(session, state):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    session.execute(update(Instance).where(Instance.id == inst.id).values(state=state))
    session.commit()
    with pytest.raises(Conflict) as err:
        change(session, cloud, inst, cpu_weight=999)
    assert err.value.fields == {"state": [f"is {state}; changing resources needs running or stopped"]}


def test_a_host_failure_puts_the_old_values_back_and_says_so(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    before = shares.current(inst)
    cloud.fail_on = "set_domain_shares"
    with pytest.raises(HostOperationFailed):
        change(session, cloud, inst, cpu_weight=999, memory_mib=200)
    session.refresh(inst)
    assert shares.current(inst) == before
    actions = [a for a in share_changes.instance_store.list_actions(session, inst.id) if a.action == "set_resources"]
    assert [(a.result, "exploded" in a.message) for a in actions] == [("error", True)]


def test_memory_follows_into_the_hosts_allocation_and_must_fit_there(session):
    """The conftest's host has 512 MiB (ratio 1.0): three small guests take 384."""
    cloud = FakeCloud()
    a, b, _c = (running_instance(session, cloud, name) for name in ("m1", "m2", "m3"))
    [host] = {a.host, b.host}
    assert scheduler.stored_allocations(session)[host][1] == 384
    change(session, cloud, a, memory_mib=256)
    assert scheduler.stored_allocations(session)[host][1] == 512
    with pytest.raises(Conflict) as err:
        change(session, cloud, b, memory_mib=192)
    assert err.value.fields == {"memory_mib": ["does not fit its host"]}
    session.refresh(b)
    assert b.memory_mib == 128 and cloud.domains[b.id]["memory_mib"] == 128
    change(session, cloud, a, memory_mib=64)          # shrinking frees room for the other
    assert change(session, cloud, b, memory_mib=192).memory_mib == 192
    # A host failure puts the allocation back with the values.
    cloud.fail_on = "set_domain_shares"
    with pytest.raises(HostOperationFailed):
        change(session, cloud, b, memory_mib=256)
    assert scheduler.stored_allocations(session)[host] == scheduler.counted_allocations(session)[host]
    assert scheduler.stored_allocations(session)[host][1] == 64 + 192 + 128
