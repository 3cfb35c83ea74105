"""Unit tests of the create/delete sagas on a real migrated database, with the other services
replaced by in-memory fakes that record what exists (so leaks are visible)."""
import datetime as dt

import pytest

from services.instances import lifecycle, saga
from services.instances.models import Instance
from tests.instances.fakes import ACTOR, NOW, POLICY, FakeCloud, new_instance


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

    _, needs_teardown = lifecycle.request_delete(session, ACTOR, inst.id, NOW)
    assert needs_teardown
    assert saga.run_delete(session, inst.id, cloud.peers, lambda: NOW) == "deleted"
    assert cloud.empty()


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
    assert inst.reason == "no hypervisor host is up"


def test_delete_while_building_is_finished_by_the_saga(session):
    cloud = FakeCloud()
    inst = new_instance(session)
    original = cloud.peers.storage.create_root_disk

    def delete_arrives_meanwhile(req):
        result = original(req)
        lifecycle.request_delete(session, ACTOR, inst.id, NOW)
        return result
    cloud.peers.storage.create_root_disk = delete_arrives_meanwhile
    assert saga.run_create(session, inst.id, cloud.peers, POLICY, lambda: NOW) == "deleted"
    assert cloud.empty()


def test_names_are_unique_per_user_among_live_instances(session):
    new_instance(session, "same")
    with pytest.raises(Exception) as err:
        new_instance(session, "same")
    assert err.value.fields == {"name": ["already in use"]}


def test_others_instances_are_invisible(session):
    inst = new_instance(session)
    stranger = {"id": 99, "username": "eve", "role": "user"}
    admin = {"id": 1, "username": "admin", "role": "admin"}
    assert lifecycle.list_instances(session, stranger) == []
    assert [i.id for i in lifecycle.list_instances(session, admin)] == [inst.id]
    with pytest.raises(Exception) as err:
        lifecycle.visible_instance(session, stranger, inst.id)
    assert type(err.value).__name__ == "NotFound"
    assert session.get(Instance, inst.id).state == "pending"
