"""Storage over a host agent whose pool is `logical`, on libvirt's test driver (it accepts logical
pools and keeps their volumes in memory, running no LVM command): the names, paths and formats
storage records and passes on follow the host pool's kind (raw LVs, no .qcow2 suffix), and a
domain's disks there are raw block devices."""
import uuid
import xml.etree.ElementTree as ET

import libvirt
import pytest
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy

from common.errors import Conflict
from hostagent.service import make_service
from services.storage.service import StorageService

GIB = 1 << 30
ADMIN = {"id": 1, "username": "admin", "role": "admin", "projects": []}
INSTANCES = {}


class FakeInstances:
    name = "instances"

    @rpc
    def get_instance(self, actor, instance_id):
        return INSTANCES[instance_id]

    @rpc
    def list_hosts(self, actor=None):
        return [{"name": host["host"], "up": True, "state": "enabled", "disk_gib": 100, "allocated_disk_gib": 0}
                for host in INSTANCES.values()][:1]


class FakeAccounts:
    name = "accounts"

    @rpc
    def get_quota_limits(self, project_id, user_id):
        return {"project": {}, "user": {}}


@pytest.fixture
def cloud(container_factory, service_config, migrated_database):
    host, vg = f"lg-{uuid.uuid4().hex[:8]}", f"vg{uuid.uuid4().hex[:6]}"
    pool_name = f"lp-{uuid.uuid4().hex[:8]}"
    agent_config = service_config(LIBVIRT_URI="test:///default", STORAGE_POOL_KIND="logical", STORAGE_VG=vg,
                                  POOL_NAME=pool_name, HEARTBEAT_INTERVAL=60, STATS_INTERVAL=60)
    container_factory(make_service(host), agent_config).start()
    config = service_config(DATABASE_URL=migrated_database("services.storage"), DATA_DIR="/srv/labcloud",
                            HOST_RPC_TIMEOUT=5, VOLUME_RECONCILE_INTERVAL=3600)
    for service in (FakeInstances, FakeAccounts, StorageService):
        container_factory(service, config).start()
    yield config, host, vg
    conn = libvirt.open("test:///default")
    pool = conn.storagePoolLookupByName(pool_name)
    for volume in pool.listAllVolumes(0):
        volume.delete(0)
    pool.destroy()
    pool.undefine()


def test_volumes_on_a_logical_host_are_raw_lvs(cloud):
    config, host, vg = cloud
    instance_id = str(uuid.uuid4())
    with ServiceRpcProxy("storage", config) as storage, ServiceRpcProxy(f"hostagent_{host}", config) as agent:
        assert agent.get_host_info()["pool_kind"] == "logical"
        root = storage.create_root_disk({"instance_id": instance_id, "image_id": 1, "host": host, "size_gib": 2})
        assert root["name"] == f"root-{instance_id}" and root["path"] == f"/dev/{vg}/root-{instance_id}"
        listed = {v["name"]: v for v in agent.get_inventory()["volumes"]}
        assert listed["image-1"]["format"] == "raw" and listed[f"root-{instance_id}"]["format"] == "raw"

        agent.create_domain({"instance_id": instance_id, "name": f"vm-{instance_id[:8]}", "vcpus": 1,
                             "memory_mib": 128, "cpu_weight": 256, "cpu_cap": 0, "disk_path": root["path"],
                             "mac": "aa:00:0a:63:00:0b", "ip": "10.99.0.11"})
        INSTANCES[instance_id] = {"id": instance_id, "name": f"vm-{instance_id[:8]}", "host": host,
                                  "state": "stopped", "project": 10, "user_id": ADMIN["id"]}
        volume = storage.create_volume(ADMIN, {"name": "data", "size_gib": 1, "project": 10})
        assert volume["host"] == host
        attached = storage.attach_volume(ADMIN, volume["id"], {"instance": instance_id})
        assert attached["device"] == "vdb"
        snapshot = storage.create_snapshot(ADMIN, volume["id"], {"name": "before"})
        assert snapshot["state"] == "available"

        conn = libvirt.open("test:///default")
        try:
            domain = ET.fromstring(conn.lookupByUUIDString(instance_id).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        finally:
            conn.close()
        disks = {d.find("target").get("dev"): d for d in domain.findall("devices/disk")}
        for device in ("vda", "vdb"):
            assert disks[device].get("type") == "block" and disks[device].find("driver").get("type") == "raw"
        assert disks["vda"].find("source").get("dev") == root["path"]
        data_path = disks["vdb"].find("source").get("dev")
        assert data_path.startswith(f"/dev/{vg}/data-") and not data_path.endswith(".qcow2")
        names = {v["name"] for v in agent.get_inventory()["volumes"]}
        assert {n.split("-")[0] for n in names} == {"image", "root", "data", "snap"}
        assert not any(n.endswith(".qcow2") for n in names)
        [pool] = storage.list_pools(ADMIN)
        assert pool["kind"] == "logical" and pool["volumes"] == 1

        growth = storage.root_disk_growth(instance_id)  # what a resize asks first
        assert growth["growable"] is False and "LVM snapshot" in growth["reason"]
        with pytest.raises(Conflict) as grown:  # an LVM snapshot keeps its image's size
            storage.grow_root_disk({"instance_id": instance_id, "size_gib": 3})
        assert set(grown.value.fields) == {"size_gib"}
        assert storage.delete_root_disk({"instance_id": instance_id}) == {"deleted": True}
        assert f"root-{instance_id}" not in {v["name"] for v in agent.get_inventory()["volumes"]}


@pytest.fixture
def dir_host(container_factory, service_config):
    """A second host, of a dir pool, on the same test driver."""
    host, pool_name = f"dh-{uuid.uuid4().hex[:8]}", f"dp-{uuid.uuid4().hex[:8]}"
    container_factory(make_service(host), service_config(
        LIBVIRT_URI="test:///default", POOL_NAME=pool_name, POOL_PATH=f"/labcloud-test/{pool_name}",
        HEARTBEAT_INTERVAL=60, STATS_INTERVAL=60)).start()
    yield host
    conn = libvirt.open("test:///default")
    pool = conn.storagePoolLookupByName(pool_name)
    for volume in pool.listAllVolumes(0):
        volume.delete(0)
    pool.destroy()
    pool.undefine()


def test_a_root_disk_moves_from_a_dir_host_onto_a_raw_lv(cloud, dir_host):
    """A migration's disk steps: the logical destination gets an empty raw LV of the disk's size
    (no image: the whole disk is copied into it), and the row then names it, without .qcow2."""
    config, host, vg = cloud
    instance_id = str(uuid.uuid4())
    with ServiceRpcProxy("storage", config) as storage, ServiceRpcProxy(f"hostagent_{host}", config) as logical, \
            ServiceRpcProxy(f"hostagent_{dir_host}", config) as source:
        root = storage.create_root_disk({"instance_id": instance_id, "image_id": 1, "host": dir_host, "size_gib": 2})
        assert root["name"] == f"root-{instance_id}.qcow2"
        prepared = storage.prepare_root_disk_move({"instance_id": instance_id, "host": host})
        assert prepared == {"path": f"/dev/{vg}/root-{instance_id}", "capacity_bytes": 2 * GIB}
        [made] = logical.get_inventory()["volumes"]  # no image copy on the destination
        assert made == {"name": f"root-{instance_id}", "path": prepared["path"], "capacity_bytes": 2 * GIB,
                        "format": "raw"}
        assert storage.complete_root_disk_move({"instance_id": instance_id, "source": dir_host,
                                                "destination": host, "path": prepared["path"]}) == {"moved": True}
        [row] = [v for v in storage.list_volumes() if v["instance_id"] == instance_id]
        assert (row["host"], row["name"], row["path"]) == (host, f"root-{instance_id}", prepared["path"])
        assert root["name"] not in {v["name"] for v in source.get_inventory()["volumes"]}
        # Asked again (a redelivery): the same answer, nothing deleted that the row names.
        assert storage.complete_root_disk_move({"instance_id": instance_id, "source": dir_host,
                                                "destination": host, "path": prepared["path"]}) == {"moved": True}
        assert storage.abort_root_disk_move({"instance_id": instance_id, "host": host}) == {"deleted": False}
        assert [v["name"] for v in logical.get_inventory()["volumes"]] == [f"root-{instance_id}"]
