"""The logical pool for real on this machine: an LVM volume group on a loop device (a sparse file),
a libvirt `logical` pool over it in a private libvirtd (labcloud.qemu_host; test:///default runs
no LVM command). These machines have no device-mapper, so lvcreate (and so every LV) cannot be
made here: what runs is the pool (defined, started, its capacity read through vgs) and the
failure of a volume's creation, which must be clean: no LV, no libvirt volume, no storage row.
Skipped only when loop devices or lvm2 cannot work here at all."""
import os
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET

import libvirt
import pytest
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy

from common.errors import HostOperationFailed
from hostagent import storage_pool
from hostagent.hypervisor import HypervisorConnection
from hostagent.pools import LogicalPool
from hostagent.service import make_service
from services.storage.service import StorageService
from tests.hostagent.qemu_hosts import private_qemu_host

GIB = 1 << 30
PV_BYTES = 4 * GIB  # sparse: only LVM's metadata is ever written
ADMIN = {"id": 1, "username": "admin", "role": "admin", "projects": []}


def lvm(*argv):
    return subprocess.run(list(argv), capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def volume_group(tmp_path_factory):
    """(VG name, loop device): a VG of its own on a loop device over a sparse file; all of it
    removed afterwards, whatever the test did."""
    if shutil.which("vgcreate") is None:
        pytest.skip("lvm2 is not installed (make test-setup installs it)")
    backing = tmp_path_factory.mktemp("pv") / "pv.img"
    with open(backing, "wb") as sparse:
        sparse.truncate(PV_BYTES)
    attached = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True)
    if attached.returncode != 0:
        pytest.skip(f"no loop device here: {attached.stderr.strip()}")
    loop = attached.stdout.strip()
    vg = f"lct{uuid.uuid4().hex[:8]}"
    try:
        lvm("pvcreate", "-q", loop)
        lvm("vgcreate", "-q", vg, loop)
        yield vg, loop
    finally:
        subprocess.run(["vgremove", "-q", "-f", vg], capture_output=True)
        subprocess.run(["pvremove", "-q", loop], capture_output=True)
        subprocess.run(["losetup", "-d", loop], capture_output=True)


@pytest.fixture(scope="module")
def qemu_host(tmp_path_factory):
    yield from private_qemu_host(tmp_path_factory, "lvm1")


@pytest.fixture
def logical(qemu_host, volume_group):
    """(LogicalPool, libvirt pool, connection): the pool defined and started; undefined after."""
    vg, loop = volume_group
    host_pool = LogicalPool(f"lv-{uuid.uuid4().hex[:6]}", vg, [loop])
    conn = libvirt.open(qemu_host.uri)
    pool = host_pool.ensure(conn)
    yield host_pool, pool, conn
    pool.destroy()
    pool.undefine()
    conn.close()


def logical_volumes(vg):
    return lvm("lvs", "--noheadings", "-o", "lv_name", vg).split()


def test_pool_over_a_real_volume_group(logical, volume_group):
    host_pool, pool, _conn = logical
    vg, loop = volume_group
    assert pool.isActive() and pool.autostart()
    defined = ET.fromstring(pool.XMLDesc(0))
    assert defined.get("type") == "logical" and defined.findtext("source/name") == vg
    assert [d.get("path") for d in defined.findall("source/device")] == [loop]
    usage = storage_pool.pool_usage(pool)
    vg_size = int(lvm("vgs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_size", vg))
    assert usage == {"pool": host_pool.name, "capacity_bytes": vg_size, "allocation_bytes": 0,
                     "available_bytes": vg_size}
    assert 3 * GIB < vg_size <= PV_BYTES


def test_lvcreate_fails_cleanly_without_device_mapper(logical, volume_group, qemu_host):
    """The commands libvirt runs, as its errors name them; nothing is left behind."""
    host_pool, pool, _conn = logical
    vg, _loop = volume_group
    hypervisor = HypervisorConnection(qemu_host.uri)
    try:
        with pytest.raises(HostOperationFailed) as plain:
            hypervisor.run(lambda conn: host_pool.create_volume(conn, pool, "data-x", GIB))
        assert f"lvcreate --name data-x -L 1048576K {vg}" in str(plain.value)
        assert "device-mapper" in str(plain.value)
        with pytest.raises(HostOperationFailed) as snapshot:
            hypervisor.run(lambda conn: host_pool.create_volume(conn, pool, "root-a", GIB, "raw",
                                                                f"/dev/{vg}/image-1"))
        # libvirt 9.0 makes a volume with a <backingStore> on a logical pool an LVM snapshot.
        assert f"lvcreate --name root-a -L 1048576K -s /dev/{vg}/image-1" in str(snapshot.value)
    finally:
        hypervisor.close()
    pool.refresh(0)
    assert pool.listAllVolumes(0) == [] and logical_volumes(vg) == []


class FakeInstances:
    name = "instances"

    @rpc
    def list_hosts(self, actor=None):
        return [{"name": "lvm1", "up": True, "state": "enabled", "disk_gib": 4, "allocated_disk_gib": 0}]


class FakeAccounts:
    name = "accounts"

    @rpc
    def get_quota_limits(self, project_id, user_id):
        return {"project": {}, "user": {}}


@pytest.fixture
def cloud(container_factory, service_config, migrated_database, qemu_host, volume_group, tmp_path):
    """A host agent of a logical pool on the real VG, and storage (its data dir holding the tiny
    image's source, a qcow2 the agent converts to raw)."""
    vg, loop = volume_group
    images = tmp_path / "images"
    images.mkdir()
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(images / "tiny.qcow2"), "64M"], check=True)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    pool_name = f"lv-{uuid.uuid4().hex[:6]}"
    agent_config = service_config(LIBVIRT_URI=qemu_host.uri, STORAGE_POOL_KIND="logical", STORAGE_VG=vg,
                                  STORAGE_DEVICES=loop, POOL_NAME=pool_name, STORAGE_SCRATCH_DIR=str(scratch),
                                  HEARTBEAT_INTERVAL=60, STATS_INTERVAL=60)
    container_factory(make_service("lvm1"), agent_config).start()
    config = service_config(DATABASE_URL=migrated_database("services.storage"), DATA_DIR=str(tmp_path),
                            HOST_RPC_TIMEOUT=30, VOLUME_RECONCILE_INTERVAL=3600)
    for service in (FakeInstances, FakeAccounts, StorageService):
        container_factory(service, config).start()
    yield config, pool_name, scratch
    conn = libvirt.open(qemu_host.uri)
    try:
        pool = conn.storagePoolLookupByName(pool_name)
        pool.destroy()
        pool.undefine()
    finally:
        conn.close()


def test_storage_leaves_nothing_when_the_host_cannot_make_lvs(cloud, volume_group, qemu_host):
    config, pool_name, scratch = cloud
    vg, _loop = volume_group
    with ServiceRpcProxy("storage", config) as storage:
        [listed] = storage.list_pools(ADMIN)
        assert listed["kind"] == "logical" and listed["pool"] == pool_name and listed["capacity_bytes"] > 3 * GIB
        with pytest.raises(HostOperationFailed) as root:
            storage.create_root_disk({"instance_id": str(uuid.uuid4()), "image_id": 1, "host": "lvm1",
                                      "size_gib": 1})
        # The qcow2 template was converted; making its raw LV failed.
        assert "lvcreate --name image-1" in str(root.value) and "device-mapper" in str(root.value)
        with pytest.raises(HostOperationFailed) as data:
            storage.create_volume(ADMIN, {"name": "scratch", "size_gib": 1, "project": 10})
        assert "lvcreate --name data-" in str(data.value)
        assert storage.list_volumes() == []
        assert storage.list_data_volumes(ADMIN) == []
    assert os.listdir(scratch) == []  # the converted copy is gone too
    conn = libvirt.open(qemu_host.uri)
    try:
        pool = conn.storagePoolLookupByName(pool_name)
        pool.refresh(0)
        assert pool.listAllVolumes(0) == []
    finally:
        conn.close()
    assert logical_volumes(vg) == []
