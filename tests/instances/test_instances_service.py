"""The instances service with every real service it talks to (accounts, network, storage, a host
agent on test:///default) in this process, over the real broker: the create saga, delete, and a
host that dies mid-create leaving nothing behind."""
import libvirt
import pytest

from common.errors import NotFound
from hostagent.service import make_service
from tests.instances.services import gone, running_cloud, wait


@pytest.fixture
def cloud(container_factory, service_config, migrated_database):
    with running_cloud(container_factory, service_config, migrated_database, {"HOST_STALE_AFTER": 30}) as c:
        yield c.rpc, c.actor, c.key, c.host, c.agent


def domain_uuids():
    conn = libvirt.open("test:///default")
    try:
        return {d.UUIDString() for d in conn.listAllDomains()}
    finally:
        conn.close()


def test_create_and_delete_through_every_service(cloud):
    rpc, actor, key, host, _ = cloud
    inst = rpc.instances.create_instance(actor, {"name": "vm", "flavor": 1, "image": 1, "key": key["id"]})
    assert inst["state"] == "pending"
    done = wait(lambda: (i := rpc.instances.get_instance(actor, inst["id"]))["state"] != "pending"
                and i["state"] != "building" and i, what="running")
    assert done["state"] == "running", done
    assert rpc.network.get_address(inst["id"])["ip"] == done["ip"]
    assert [v["instance_id"] for v in rpc.storage.list_volumes(host)] == [inst["id"]]
    assert inst["id"] in domain_uuids()

    assert rpc.instances.delete_instance(actor, inst["id"])["state"] == "deleting"
    wait(lambda: gone(rpc, actor, inst["id"]), what="deleted")
    assert [i["state"] for i in rpc.instances.list_instances(actor, True)] == ["deleted"]
    assert rpc.instances.list_instances(actor) == []
    assert [(a["action"], a["result"]) for a in rpc.instances.list_instance_actions(actor, inst["id"])] == [
        ("create", "success"), ("delete", "success")]
    assert rpc.network.get_address(inst["id"]) is None
    assert rpc.storage.list_volumes(host) == []
    assert inst["id"] not in domain_uuids()


def test_host_dying_mid_create_is_tracked_and_cleaned_when_it_returns(cloud, container_factory, service_config):
    rpc, actor, key, host, agent = cloud
    # A host that has served before (storage knows its pool's disk format, which a disk's name
    # follows, so it records the disk before asking the host to make it) dies.
    served = rpc.instances.create_instance(actor, {"name": "served", "flavor": 1, "image": 1, "key": key["id"]})
    wait(lambda: rpc.instances.get_instance(actor, served["id"])["state"] == "running", what="first one running")
    agent.stop()  # heartbeats were seen, so the scheduler still picks this host
    inst = rpc.instances.create_instance(actor, {"name": "vm", "flavor": 1, "image": 1, "key": key["id"]})
    done = wait(lambda: (i := rpc.instances.get_instance(actor, inst["id"]))["state"] in ("error", "running")
                and i, timeout=30, what="error")
    assert done["state"] == "error" and "no answer" in done["reason"], done
    # Whether the dead host made the domain and disk is unknown: the address stays the instance's
    # (a guest there may still use it), storage keeps the disk's record marked for deletion, and the
    # instance says its cleanup is incomplete, instead of forgetting what may exist.
    assert rpc.network.get_address(inst["id"])["ip"] is not None
    assert [v["state"] for v in rpc.storage.list_volumes(host) if v["instance_id"] == inst["id"]] == ["deleting"]
    assert "cleanup incomplete" in done["reason"]

    container_factory(make_service(host), service_config(
        LIBVIRT_URI="test:///default", POOL_NAME=f"p{host}", POOL_PATH=f"/labcloud-test/{host}",
        HEARTBEAT_INTERVAL=0.2, STATS_INTERVAL=60)).start()  # the host comes back
    rpc.instances.delete_instance(actor, inst["id"])
    wait(lambda: gone(rpc, actor, inst["id"]), what="deleted")
    assert [v["instance_id"] for v in rpc.storage.list_volumes(host)] == [served["id"]]
    assert rpc.network.get_address(inst["id"]) is None, "IP leaked"
    assert inst["id"] not in domain_uuids()


def test_bad_requests_name_their_fields(cloud):
    rpc, actor, key, _, _ = cloud
    from common.errors import InvalidInput
    with pytest.raises(InvalidInput) as err:
        rpc.instances.create_instance(actor, {"name": "Bad_Name", "flavor": 99, "image": 1, "key": key["id"]})
    assert "name" in err.value.fields
    with pytest.raises(InvalidInput) as err:
        rpc.instances.create_instance(actor, {"name": "ok", "flavor": 99, "image": 1, "key": key["id"]})
    assert err.value.fields == {"flavor": ["unknown flavor"]}
    with pytest.raises(NotFound):
        rpc.instances.create_instance(actor, {"name": "ok", "flavor": 1, "image": 999, "key": key["id"]})
    with pytest.raises(NotFound):
        rpc.instances.create_instance(actor, {"name": "ok", "flavor": 1, "image": 1, "key": 999})
    assert rpc.instances.list_instances(actor) == []
