"""Unit tests of the create/delete sagas on a real migrated database, with the other services
replaced by in-memory fakes that record what exists (so leaks are visible)."""
import datetime as dt

import pytest

from services.instances import access, instance_store, lifecycle, saga
from sqlalchemy.exc import IntegrityError

from common.errors import InvalidInput, NotFound
from common.schemas import load
from services.instances.models import Instance
from services.instances.schemas import CreateInstanceRequest
from tests.instances.fakes import (
    ACTOR, KEY, NOW, POLICY, PROJECT, UNLIMITED, FakeCloud, flavor_named, new_instance, running_instance)


def test_create_runs_every_step_and_delete_undoes_them(session):
    cloud = FakeCloud()
    inst = new_instance(session)
    assert saga.run_create(session, inst.id, cloud.peers, POLICY, lambda: NOW) == "running"
    session.refresh(inst)
    assert (inst.host, inst.ip, inst.root_volume_id) == ("h1", "10.99.0.2", 1)
    spec = cloud.domains[inst.id]
    assert spec["memory_mib"] == 128 and spec["cpu_weight"] == 256 and spec["disk_path"].endswith(inst.id)
    assert spec["kernel"] == "/images/tiny/vmlinux"
    assert spec["cmdline"] == "console=ttyS0 ip=10.99.0.2::10.99.0.1:255.255.252.0:vm1:eth0:off"
    assert inst.ssh_port == 22001 and inst.started_at == NOW
    # Redelivered event: nothing new happens.
    assert saga.run_create(session, inst.id, cloud.peers, POLICY, lambda: NOW) == "running"
    assert len(cloud.domains) == 1

    assert lifecycle.request_delete(session, ACTOR, inst.id).state == "deleting"
    assert saga.run_delete(session, inst.id, cloud.peers, lambda: NOW) == "deleted"
    assert cloud.empty()
    assert [(a.action, a.result) for a in instance_store.list_actions(session, inst.id)] == [
        ("create", "success"), ("delete", "success")]


@pytest.mark.parametrize("step", ["allocate_address", "create_root_disk", "create_domain"])
def test_failed_step_is_compensated(session, step):
    cloud = FakeCloud(fail_on=step)
    inst = new_instance(session)
    assert saga.run_create(session, inst.id, cloud.peers, POLICY, lambda: NOW) == "error"
    session.refresh(inst)
    assert step in inst.reason
    assert cloud.empty(), f"leaked after {step} failed: {cloud.addresses, cloud.disks, cloud.domains}"


def test_no_room_is_an_error_with_reason_and_frees_nothing_it_did_not_take(session):
    cloud = FakeCloud()
    big = new_instance(session, "big", "large")
    assert saga.run_create(session, big.id, cloud.peers, POLICY, lambda: NOW) == "running"
    other = new_instance(session, "other", "small")  # 512 MiB host already full
    assert saga.run_create(session, other.id, cloud.peers, POLICY, lambda: NOW) == "error"
    session.refresh(other)
    assert "no host has room" in other.reason
    assert list(cloud.domains) == [big.id]


def test_stale_host_is_not_used(session):
    cloud = FakeCloud()
    inst = new_instance(session)
    later = NOW + dt.timedelta(minutes=5)
    assert saga.run_create(session, inst.id, cloud.peers, POLICY, lambda: later) == "error"
    session.refresh(inst)
    assert inst.reason.startswith("no hypervisor host is up: 1 host;") and "down: 1" in inst.reason


def test_delete_while_building_is_finished_by_the_saga(session):
    cloud = FakeCloud()
    inst = new_instance(session)
    original = cloud.peers.storage.create_root_disk

    def delete_arrives_meanwhile(req):
        result = original(req)
        lifecycle.request_delete(session, ACTOR, inst.id)
        return result
    cloud.peers.storage.create_root_disk = delete_arrives_meanwhile
    assert saga.run_create(session, inst.id, cloud.peers, POLICY, lambda: NOW) == "deleted"
    assert cloud.empty()


def test_names_are_unique_per_user_among_live_instances(session):
    new_instance(session, "same")
    with pytest.raises(Exception) as err:
        new_instance(session, "same")
    assert err.value.fields == {"name": ["already in use"]}


def test_a_deleted_instance_gives_its_name_back_and_looks_missing(session):
    cloud = FakeCloud()
    first = new_instance(session, "same")
    assert saga.run_create(session, first.id, cloud.peers, POLICY, lambda: NOW) == "running"
    lifecycle.request_delete(session, ACTOR, first.id)
    with pytest.raises(Exception) as err:  # still being deleted: still holds the name
        new_instance(session, "same")
    assert "deleting" in str(err.value)
    assert saga.run_delete(session, first.id, cloud.peers, lambda: NOW) == "deleted"
    second = new_instance(session, "same")
    assert second.id != first.id
    with pytest.raises(NotFound):
        access.visible_instance(session, ACTOR, first.id)
    assert access.visible_instance(session, ACTOR, first.id, include_deleted=True).state == "deleted"
    assert [i.id for i in access.list_instances(session, ACTOR)] == [second.id]
    assert {i.id for i in access.list_instances(session, ACTOR, include_deleted=True)} == {first.id, second.id}


def test_the_database_refuses_a_second_holder_of_a_name(session):
    """Two replicas checking at once both see the name free: the unique key decides."""
    new_instance(session, "race")
    clash = Instance(id="00000000-0000-4000-8000-000000000001", name="race", name_key="race",
                     user_id=ACTOR["id"], flavor_id=1, image_id=1, state="pending")
    session.add(clash)
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_a_redelivered_create_after_a_delete_cleans_up(session):
    """The saga's worker died after making things; the user deleted meanwhile; the redelivered
    create event must undo what was made, not leave it."""
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    lifecycle.request_delete(session, ACTOR, inst.id)
    assert saga.run_create(session, inst.id, cloud.peers, POLICY, lambda: NOW) == "deleted"
    assert cloud.empty()


def test_a_teardown_that_fails_stays_deleting_and_is_retried(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    lifecycle.request_delete(session, ACTOR, inst.id)
    cloud.fail_on = "destroy_domain"
    assert saga.run_delete(session, inst.id, cloud.peers, lambda: NOW) == "deleting"
    session.refresh(inst)
    assert "destroy_domain exploded" in inst.reason
    assert cloud.addresses, "the address must stay taken while the domain may still exist"
    cloud.fail_on = None
    assert saga.run_delete(session, inst.id, cloud.peers, lambda: NOW) == "deleted"
    assert cloud.empty()


def test_delete_of_an_instance_whose_host_is_down_waits_for_the_host(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    lifecycle.request_delete(session, ACTOR, inst.id)
    assert saga.run_delete(session, inst.id, cloud.peers, lambda: NOW, host_is_up=lambda h: False) == "deleting"
    session.refresh(inst)
    assert inst.reason == "waiting for host h1 to come back"
    assert cloud.domains and cloud.addresses  # nothing released while the host may run the guest
    assert saga.run_delete(session, inst.id, cloud.peers, lambda: NOW, host_is_up=lambda h: True) == "deleted"
    assert cloud.empty()


def test_others_instances_are_invisible(session):
    inst = new_instance(session)
    stranger = {"id": 99, "username": "eve", "role": "user"}
    admin = {"id": 1, "username": "admin", "role": "admin"}
    assert access.list_instances(session, stranger) == []
    assert [i.id for i in access.list_instances(session, admin)] == [inst.id]
    with pytest.raises(Exception) as err:
        access.visible_instance(session, stranger, inst.id)
    assert type(err.value).__name__ == "NotFound"
    assert session.get(Instance, inst.id).state == "pending"


def test_a_newer_host_event_seen_during_the_create_wins(session):
    """The guest powered off before the create saga recorded the start: the event (newer seq) was
    recorded first, so the instance ends `stopped`, not `running`."""
    cloud = FakeCloud()
    inst = new_instance(session)
    original = cloud.host.create_domain

    def create_then_guest_powers_off(spec):
        answer = original(spec)
        saga.instance_store.record_host_report(session, inst.id, "shutoff", cloud.next_seq())
        return answer
    cloud.host.create_domain = create_then_guest_powers_off
    assert saga.run_create(session, inst.id, cloud.peers, POLICY, lambda: NOW) == "stopped"
    assert [(a.action, a.result) for a in instance_store.list_actions(session, inst.id)] == [("create", "success")]


def test_a_delete_saga_that_finishes_while_the_create_saga_works_leaves_nothing(session):
    """The delete saga runs to `deleted` after the create saga asked for the address and disk but
    before it made the domain: the create saga still removes what it made afterwards."""
    cloud = FakeCloud()
    inst = new_instance(session)
    original = cloud.peers.storage.create_root_disk

    def whole_delete_meanwhile(req):
        made = original(req)
        lifecycle.request_delete(session, ACTOR, inst.id)
        assert saga.run_delete(session, inst.id, cloud.peers, lambda: NOW) == "deleted"
        return made  # the create saga goes on to make the domain
    cloud.peers.storage.create_root_disk = whole_delete_meanwhile
    assert saga.run_create(session, inst.id, cloud.peers, POLICY, lambda: NOW) == "deleted"
    assert cloud.empty(), (cloud.addresses, cloud.disks, cloud.domains)


def test_an_image_that_needs_more_disk_than_the_flavor_is_refused_by_the_image_filter(session):
    cloud = FakeCloud()
    cloud.image = {"min_disk_gib": 50}
    inst = new_instance(session)
    assert saga.run_create(session, inst.id, cloud.peers, POLICY, lambda: NOW) == "error"
    session.refresh(inst)
    assert "image" in inst.reason and cloud.empty()


def test_a_group_with_anti_affinity_is_recorded_and_needs_its_group(session):
    base = {"name": "g1", "flavor": 1, "image": 1, "key": 1}
    with pytest.raises(InvalidInput) as err:
        load(CreateInstanceRequest, dict(base, anti_affinity=True))
    assert set(err.value.fields) == {"anti_affinity"}
    request = load(CreateInstanceRequest, dict(base, group="web", anti_affinity=True))
    inst = lifecycle.record_instance(session, ACTOR, request, flavor_named(session, "small"), KEY, PROJECT,
                                     UNLIMITED)
    assert (inst.placement_group, inst.anti_affinity) == ("web", True)


def test_an_address_of_a_routed_subnet_sends_the_guest_to_its_network(session):
    """The network service's answer names the routed subnet's libvirt network: the host agent's
    create_domain gets it (with the subnet), and the guest's gateway is the subnet's (the host)."""
    from hostagent.schemas import DomainSpec
    cloud = FakeCloud()
    inst = new_instance(session)
    cloud.addresses[inst.id] = {"owner": inst.id, "ip": "10.77.0.2", "mac": "aa:00:0a:4d:00:02",
                                "gateway": "10.77.0.1", "prefixlen": 24, "cidr": "10.77.0.0/24",
                                "dns_servers": ["9.9.9.9"], "mode": "routed", "network": "lcr-hetzner"}
    assert saga.run_create(session, inst.id, cloud.peers, POLICY, lambda: NOW) == "running"
    spec = load(DomainSpec, {k: v for k, v in cloud.domains[inst.id].items() if k != "state"})  # what the agent loads
    assert spec["network"] == {"name": "lcr-hetzner", "cidr": "10.77.0.0/24", "gateway": "10.77.0.1",
                               "dns_servers": ["9.9.9.9"]}
    assert "ip=10.77.0.2::10.77.0.1:255.255.255.0:" in spec["cmdline"]
    bridged = FakeCloud()
    other = new_instance(session, name="vm2")
    assert saga.run_create(session, other.id, bridged.peers, POLICY, lambda: NOW) == "running"
    assert "network" not in bridged.domains[other.id]
