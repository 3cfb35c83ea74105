"""The storage service and a real host agent (test:///default) over the real RabbitMQ node."""
import uuid

import libvirt
import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from common.db import make_engine, session_scope
from common.errors import HostOperationFailed, InvalidInput, NotFound
from hostagent.service import make_service
from services.storage.models import Image, Volume
from services.storage.service import StorageService

GIB = 1 << 30


@pytest.fixture
def host_pool():
    name = f"st-{uuid.uuid4().hex[:8]}"
    return name, f"/labcloud-test/{name}"


@pytest.fixture
def host():
    # Unique per test: a stopped agent's RPC queue (and any calls waiting in it) outlives the test.
    return f"s-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def storage(container_factory, service_config, migrated_database, host_pool, host):
    pool_name, pool_path = host_pool
    agent = container_factory(make_service(host), service_config(
        LIBVIRT_URI="test:///default", POOL_NAME=pool_name, POOL_PATH=pool_path,
        HEARTBEAT_INTERVAL=60, STATS_INTERVAL=60))
    agent.start()
    config = service_config(DATABASE_URL=migrated_database("services.storage"), DATA_DIR="/srv/labcloud",
                            HOST_RPC_TIMEOUT=2)
    container_factory(StorageService, config).start()
    return config, agent


@pytest.fixture
def libvirt_conn():
    conn = libvirt.open("test:///default")  # same in-process state as the agent's connection
    yield conn
    conn.close()


def request(instance_id, host, image_id=1, size_gib=2):
    return {"instance_id": instance_id, "image_id": image_id, "host": host, "size_gib": size_gib}


def test_images_are_seeded(storage):
    config, _ = storage
    with ServiceRpcProxy("storage", config) as rpc:
        [tiny] = rpc.list_images()
        assert tiny["name"] == "tiny" and tiny["size_bytes"] == 64 << 20 and tiny["min_disk_gib"] == 1
        assert "source_path" not in tiny
        assert rpc.get_image(tiny["id"]) == tiny
        with pytest.raises(NotFound):
            rpc.get_image(999)


def test_root_disk_is_a_copy_on_write_clone_and_idempotent(storage, host_pool, libvirt_conn, host):
    config, _ = storage
    pool_name, pool_path = host_pool
    instance_id = str(uuid.uuid4())
    with ServiceRpcProxy("storage", config) as rpc:
        volume = rpc.create_root_disk(request(instance_id, host))
        assert volume["name"] == f"root-{instance_id}.qcow2" and volume["kind"] == "root"
        assert volume["state"] == "available" and volume["host"] == host and volume["pool"] == pool_name
        assert volume["path"] == f"{pool_path}/root-{instance_id}.qcow2"
        assert volume["capacity_bytes"] == 2 * GIB
        assert rpc.create_root_disk(request(instance_id, host)) == volume
        # The answer says how the image boots too (the create saga needs one call for both).
        assert volume.pop("boot") == rpc.get_boot_files(1)
        assert rpc.list_volumes() == [volume] and rpc.list_volumes(host) == [volume]
        assert rpc.list_volumes("elsewhere") == []

        pool = libvirt_conn.storagePoolLookupByName(pool_name)
        on_host = pool.storageVolLookupByName(volume["name"]).XMLDesc(0)
        assert f"<path>{pool_path}/image-1.qcow2</path>" in on_host.split("<backingStore>")[1]

        assert rpc.delete_root_disk({"instance_id": instance_id}) == {"deleted": True}
        assert rpc.delete_root_disk({"instance_id": instance_id}) == {"deleted": False}
        assert rpc.list_volumes() == []
        assert volume["name"] not in pool.listVolumes()
        assert "image-1.qcow2" in pool.listVolumes()  # the image stays for the next instance


def test_bad_size_and_unknown_image_are_refused(storage, host):
    config, _ = storage
    with ServiceRpcProxy("storage", config) as rpc:
        instance_id = str(uuid.uuid4())
        with pytest.raises(InvalidInput) as err:
            rpc.create_root_disk(request(instance_id, host, size_gib=0))
        assert set(err.value.fields) == {"size_gib"}
        with pytest.raises(NotFound) as err:
            rpc.create_root_disk(request(instance_id, host, image_id=42))
        assert "image_id" in err.value.fields
        assert rpc.list_volumes() == []


def test_disk_is_at_least_the_image_minimum(storage, host):
    config, _ = storage
    engine = make_engine(config["DATABASE_URL"])
    with session_scope(engine) as session:
        image = Image(name="big", size_bytes=3 * GIB, min_disk_gib=3, source_path="/srv/big.qcow2")
        session.add(image)
    with ServiceRpcProxy("storage", config) as rpc:
        volume = rpc.create_root_disk(request(str(uuid.uuid4()), host, image_id=image.id, size_gib=1))
    assert volume["capacity_bytes"] == 3 * GIB
    engine.dispose()


def test_create_left_half_done_by_a_crash_is_finished(storage, host):
    """A row committed as 'creating' before a crash: the redelivered request completes it."""
    config, _ = storage
    instance_id = str(uuid.uuid4())
    engine = make_engine(config["DATABASE_URL"])
    with session_scope(engine) as session:
        session.add(Volume(name=f"root-{instance_id}.qcow2", kind="root", host=host, capacity_bytes=GIB,
                           image_id=1, instance_id=instance_id, state="creating"))
    engine.dispose()
    with ServiceRpcProxy("storage", config) as rpc:
        volume = rpc.create_root_disk(request(instance_id, host))
        assert volume["state"] == "available" and volume["path"]
        assert [v["id"] for v in rpc.list_volumes()] == [volume["id"]]
        with pytest.raises(InvalidInput):
            rpc.delete_root_disk({"instance_id": "nope"})
        assert rpc.delete_root_disk({"instance_id": instance_id}) == {"deleted": True}


def test_host_without_agent_leaves_no_row(storage):
    config, _ = storage
    with ServiceRpcProxy("storage", config) as rpc:
        with pytest.raises(HostOperationFailed) as err:
            rpc.create_root_disk(request(str(uuid.uuid4()), "nohost"))
        assert "nohost" in str(err.value)
        assert rpc.list_volumes() == []


def test_stopped_agent_times_out_and_the_disk_awaits_deletion(storage, host):
    """A stopped agent's queue still exists: calls time out. A host that answered before (storage
    knows its pool's format, which the disk's name follows) times out making the disk: the row
    stays 'deleting' so the saga's delete step can finish once the host is back."""
    config, agent = storage
    with ServiceRpcProxy("storage", config) as rpc:
        first = rpc.create_root_disk(request(str(uuid.uuid4()), host))  # storage learns the host's pool
    agent.stop()
    instance_id = str(uuid.uuid4())
    with ServiceRpcProxy("storage", config) as rpc:
        with pytest.raises(HostOperationFailed) as err:
            rpc.create_root_disk(request(instance_id, host))
        assert "no answer" in str(err.value)
        [left] = [v for v in rpc.list_volumes() if v["id"] != first["id"]]
        assert left["instance_id"] == instance_id and left["state"] == "deleting"
        with pytest.raises(HostOperationFailed):
            rpc.delete_root_disk({"instance_id": instance_id})
