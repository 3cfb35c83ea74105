"""The two pool kinds behind one interface (hostagent/pools): the pool and volume XML each makes,
against libvirt's test driver (which accepts both kinds and keeps volumes in memory), and the
logical pool's commands and libvirt calls captured at the libvirt-call boundary with a fake
connection (this machine has no device-mapper: lvcreate cannot run; see test_logical_pool_real.py
for what runs here for real)."""
import os
import uuid
import xml.etree.ElementTree as ET

import libvirt
import pytest

from common.errors import Conflict, HostOperationFailed, InvalidInput, NotFound
from hostagent import pools, storage_pool
from hostagent.pools.logical import LogicalPool, size_argument

GIB = 1 << 30


# ----- configuration -------------------------------------------------------------------------------

def test_kind_comes_from_the_configuration():
    assert isinstance(pools.from_config({}), pools.DirPool)
    dir_pool = pools.from_config({"STORAGE_POOL_KIND": "dir", "POOL_NAME": "p1", "POOL_PATH": "var/p1"})
    assert (dir_pool.name, dir_pool.path, dir_pool.describe()) == (
        "p1", "var/p1", {"pool_kind": "dir", "disk_format": "qcow2"})
    logical = pools.from_config({"STORAGE_POOL_KIND": "logical", "STORAGE_VG": "vg0",
                                 "STORAGE_DEVICES": "/dev/sdb, /dev/sdc", "POOL_NAME": "p2"})
    assert (logical.name, logical.vg, logical.devices) == ("p2", "vg0", ("/dev/sdb", "/dev/sdc"))
    assert logical.describe() == {"pool_kind": "logical", "disk_format": "raw"}
    with pytest.raises(HostOperationFailed, match="STORAGE_POOL_KIND is 'zfs': one of dir, logical"):
        pools.from_config({"STORAGE_POOL_KIND": "zfs"})


# ----- pool XML ------------------------------------------------------------------------------------

def test_dir_pool_xml():
    root = ET.fromstring(pools.DirPool("lc", "var/pools/h1").pool_xml())
    assert root.tag == "pool" and root.get("type") == "dir"
    assert root.findtext("name") == "lc"
    assert root.findtext("target/path") == os.path.abspath("var/pools/h1")
    assert root.find("source") is None


def test_logical_pool_xml():
    root = ET.fromstring(LogicalPool("lc", "vg0", ["/dev/loop7"]).pool_xml())
    assert root.get("type") == "logical"
    assert root.findtext("name") == "lc"
    assert root.findtext("source/name") == "vg0"
    assert root.find("source/format").get("type") == "lvm2"
    assert [d.get("path") for d in root.findall("source/device")] == ["/dev/loop7"]
    assert root.findtext("target/path") == "/dev/vg0"
    assert ET.fromstring(LogicalPool("lc", "vg0").pool_xml()).find("source/device") is None  # optional


# ----- volume XML, on the test driver --------------------------------------------------------------

@pytest.fixture
def logical_pool(conn):
    host_pool = LogicalPool(f"t-{uuid.uuid4().hex[:8]}", f"vg{uuid.uuid4().hex[:6]}")
    made = host_pool.ensure(conn)
    yield host_pool, made
    for volume in made.listAllVolumes(0):
        volume.delete(0)
    made.destroy()
    made.undefine()


def test_dir_volumes_are_qcow2_over_the_image(conn, pool):
    dir_pool = pools.DirPool(pool.name(), "/unused")
    image = dir_pool.ensure_image(conn, pool, 5, 64 << 20, "qcow2", None, False)
    root = dir_pool.create_volume(conn, pool, "root-a.qcow2", GIB, None, image["path"], "qcow2")
    xml = ET.fromstring(pool.storageVolLookupByName("root-a.qcow2").XMLDesc(0))
    assert root["format"] == "qcow2" and xml.find("target/format").get("type") == "qcow2"
    assert xml.findtext("backingStore/path") == image["path"]
    assert xml.find("backingStore/format").get("type") == "qcow2"


def test_logical_volumes_are_raw_lvs(conn, logical_pool):
    host_pool, pool = logical_pool
    assert ET.fromstring(pool.XMLDesc(0)).get("type") == "logical"
    image = host_pool.ensure_image(conn, pool, 7, 64 << 20, "qcow2", None, False)
    lv_dir = f"/dev/{host_pool.vg}"
    assert image == {"name": "image-7", "path": f"{lv_dir}/image-7", "capacity_bytes": 64 << 20, "format": "raw"}
    root = host_pool.create_volume(conn, pool, "root-a", GIB, "raw", image["path"], "qcow2")
    assert root["path"] == f"{lv_dir}/root-a" and root["format"] == "raw"
    xml = ET.fromstring(pool.storageVolLookupByName("root-a").XMLDesc(0))
    assert xml.findtext("backingStore/path") == image["path"]  # libvirt: lvcreate -s <image LV>
    data = host_pool.create_volume(conn, pool, "data-b", 2 * GIB)
    assert data == {"name": "data-b", "path": f"{lv_dir}/data-b", "capacity_bytes": 2 * GIB, "format": "raw"}
    # A redelivered request: the same volume.
    assert host_pool.create_volume(conn, pool, "data-b", 2 * GIB) == data
    copy = host_pool.clone_volume(conn, pool, "snap-c", "data-b")
    assert copy["capacity_bytes"] == 2 * GIB and copy["format"] == "raw"
    grown = host_pool.grow_volume(conn, pool, "data-b", 3 * GIB, can_resize=False)
    assert grown["capacity_bytes"] == 3 * GIB


# ----- the logical pool's libvirt calls and commands, captured -------------------------------------

class FakeVolume:
    def __init__(self, pool, xml):
        self.pool, self.xml = pool, xml
        root = ET.fromstring(xml)
        self._name = root.findtext("name")
        self.capacity = int(root.findtext("capacity"))
        self.backing = root.findtext("backingStore/path")

    def name(self):
        return self._name

    def path(self):
        return f"{self.pool.target}/{self._name}"

    def info(self):
        return [0, self.capacity, self.capacity]

    def XMLDesc(self, _flags):
        backing = f"<backingStore><path>{self.backing}</path></backingStore>" if self.backing else ""
        return (f"<volume type='block'><name>{self._name}</name><capacity>{self.capacity}</capacity>"
                f"<target><path>{self.path()}</path></target>{backing}</volume>")

    def upload(self, stream, offset, length, flags):
        self.pool.calls.append(("upload", self._name, offset, length))

    def delete(self, _flags):
        self.pool.calls.append(("delete", self._name))
        del self.pool.volumes[self._name]


class FakePool:
    def __init__(self, target):
        self.target, self.volumes, self.calls = target, {}, []

    def storageVolLookupByName(self, name):
        if name not in self.volumes:
            raise _no_volume()
        return self.volumes[name]

    def createXML(self, xml, _flags):
        self.calls.append(("createXML", xml))
        volume = self.volumes[ET.fromstring(xml).findtext("name")] = FakeVolume(self, xml)
        return volume

    def createXMLFrom(self, xml, source, _flags):
        self.calls.append(("createXMLFrom", xml, source.name()))
        volume = self.volumes[ET.fromstring(xml).findtext("name")] = FakeVolume(self, xml)
        return volume

    def refresh(self, _flags):
        self.calls.append(("refresh",))


class FakeStream:
    def __init__(self, pool, fail):
        self.pool, self.fail = pool, fail

    def sendAll(self, handler, source):
        sent = 0
        while chunk := handler(self, 1 << 16, source):
            sent += len(chunk)
        self.pool.calls.append(("sent", sent))
        if self.fail:
            raise libvirt.libvirtError("stream broke")

    def finish(self):
        pass

    def abort(self):
        pass


class FakeConnection:
    """What LogicalPool calls on a connection: pools by name, streams."""

    def __init__(self, pool, upload_fails=False):
        self.pool, self.upload_fails, self.defined = pool, upload_fails, []
        self.built = self.started = self.autostarted = False

    def storagePoolLookupByName(self, _name):
        if not self.defined:
            error = libvirt.libvirtError("no pool")
            error.get_error_code = lambda: libvirt.VIR_ERR_NO_STORAGE_POOL
            raise error
        return self

    def storagePoolDefineXML(self, xml, _flags):
        self.defined.append(xml)
        return self

    # the pool object's own calls during ensure()
    def build(self, _flags):
        self.built = True

    def isActive(self):
        return self.started

    def create(self, _flags):
        self.started = True

    def autostart(self):
        return self.autostarted

    def setAutostart(self, _on):
        self.autostarted = True

    def newStream(self, _flags):
        return FakeStream(self.pool, self.upload_fails)


def _no_volume():
    error = libvirt.libvirtError("no volume")
    error.get_error_code = lambda: libvirt.VIR_ERR_NO_STORAGE_VOL
    return error


class Commands:
    """Records the commands LogicalPool runs; `qemu-img convert` writes a raw file of `raw_size`."""

    def __init__(self, raw_size=0):
        self.argv, self.raw_size = [], raw_size

    def __call__(self, argv):
        self.argv.append(argv)
        if argv[:2] == ["qemu-img", "convert"]:
            with open(argv[-1], "wb") as raw:
                raw.truncate(self.raw_size)
        return ""


@pytest.fixture
def captured(tmp_path):
    commands = Commands(raw_size=96 << 20)
    host_pool = LogicalPool("lc", "vg0", ["/dev/sdb"], run=commands, scratch_dir=str(tmp_path))
    return host_pool, FakePool("/dev/vg0"), commands


def test_ensure_defines_and_starts_but_never_builds(captured):
    host_pool, fake_pool, _commands = captured
    conn = FakeConnection(fake_pool)
    assert host_pool.ensure(conn) is conn
    assert conn.defined == [host_pool.pool_xml()]
    assert conn.built is False  # building would pvcreate the administrator's devices
    assert conn.started and conn.autostarted


def test_qcow2_image_is_converted_to_raw_and_uploaded(captured, tmp_path):
    host_pool, fake_pool, commands = captured
    source = tmp_path / "tiny.qcow2"
    source.write_bytes(b"QFI\xfb" + bytes(1020))
    image = host_pool.ensure_image(FakeConnection(fake_pool), fake_pool, 7, 64 << 20, "qcow2", str(source), True)
    [convert] = commands.argv
    assert convert[:7] == ["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(source)]
    assert os.path.dirname(os.path.dirname(convert[7])) == str(tmp_path)  # in the scratch dir
    assert not os.path.exists(convert[7])  # and removed after the upload
    created = ET.fromstring(fake_pool.calls[0][1])
    assert created.findtext("name") == "image-7"
    assert created.findtext("capacity") == str(96 << 20)  # the raw file's size: larger than asked
    assert created.find("target/format").get("type") == "raw"
    assert created.find("backingStore") is None
    assert fake_pool.calls[1:] == [("upload", "image-7", 0, 96 << 20), ("sent", 96 << 20)]
    assert image == {"name": "image-7", "path": "/dev/vg0/image-7", "capacity_bytes": 96 << 20, "format": "raw"}


def test_raw_image_is_uploaded_as_it_is(captured, tmp_path):
    host_pool, fake_pool, commands = captured
    source = tmp_path / "disk.raw"
    source.write_bytes(bytes(4096))
    host_pool.ensure_image(FakeConnection(fake_pool), fake_pool, 8, 4096, "raw", str(source), True)
    assert commands.argv == []
    assert ("sent", 4096) in fake_pool.calls


def test_failed_upload_removes_the_lv(captured, tmp_path):
    host_pool, fake_pool, _commands = captured
    source = tmp_path / "tiny.qcow2"
    source.write_bytes(bytes(512))
    with pytest.raises(libvirt.libvirtError):
        host_pool.ensure_image(FakeConnection(fake_pool, upload_fails=True), fake_pool, 9, GIB, "qcow2",
                               str(source), True)
    assert fake_pool.calls[-1] == ("delete", "image-9") and fake_pool.volumes == {}


def test_root_disk_is_a_snapshot_of_the_image_lv(captured):
    host_pool, fake_pool, commands = captured
    host_pool.create_volume(None, fake_pool, "root-a", GIB, "raw", "/dev/vg0/image-7", "qcow2")
    volume = ET.fromstring(fake_pool.calls[-1][1])
    assert volume.findtext("name") == "root-a"
    assert volume.findtext("capacity") == str(GIB)  # lvcreate -L: the copy-on-write area
    assert volume.find("target/format").get("type") == "raw"
    assert volume.findtext("backingStore/path") == "/dev/vg0/image-7"
    assert volume.find("backingStore/format").get("type") == "raw"  # whatever the caller said
    assert commands.argv == []  # libvirt runs lvcreate -s


def test_data_volume_is_a_plain_lv_and_never_qcow2(captured):
    host_pool, fake_pool, _commands = captured
    host_pool.create_volume(None, fake_pool, "data-b", 2 * GIB)
    volume = ET.fromstring(fake_pool.calls[-1][1])
    assert volume.find("backingStore") is None and volume.find("target/format").get("type") == "raw"
    with pytest.raises(InvalidInput) as refused:
        host_pool.create_volume(None, fake_pool, "data-c", GIB, "qcow2")
    assert set(refused.value.fields) == {"format"}
    assert "data-c" not in fake_pool.volumes


def test_snapshot_of_a_data_volume_is_a_full_raw_copy(captured):
    host_pool, fake_pool, _commands = captured
    host_pool.create_volume(None, fake_pool, "data-b", 2 * GIB)
    copy = host_pool.clone_volume(None, fake_pool, "snap-c", "data-b")
    kind, xml, source = fake_pool.calls[-1]
    assert (kind, source) == ("createXMLFrom", "data-b")
    assert ET.fromstring(xml).find("target/format").get("type") == "raw"
    assert copy["capacity_bytes"] == 2 * GIB


def test_grow_runs_lvextend_then_refreshes(captured):
    host_pool, fake_pool, commands = captured
    host_pool.create_volume(None, fake_pool, "data-b", GIB)
    host_pool.grow_volume(None, fake_pool, "data-b", 3 * GIB)
    assert commands.argv == [["lvextend", "-L", "3145728K", "/dev/vg0/data-b"]]
    assert fake_pool.calls[-1] == ("refresh",)
    host_pool.grow_volume(None, fake_pool, "data-b", GIB)  # never shrinks: nothing runs
    assert len(commands.argv) == 1
    assert size_argument(GIB + 1) == "1048577K"  # rounded up, as libvirt does


def test_root_disk_snapshot_cannot_grow(captured):
    host_pool, fake_pool, commands = captured
    host_pool.create_volume(None, fake_pool, "root-a", GIB, "raw", "/dev/vg0/image-7")
    with pytest.raises(Conflict) as refused:
        host_pool.grow_volume(None, fake_pool, "root-a", 2 * GIB)
    assert set(refused.value.fields) == {"size_gib"} and commands.argv == []
    with pytest.raises(NotFound):
        host_pool.grow_volume(None, fake_pool, "root-missing", 2 * GIB)


def test_volume_listing_is_kind_independent(conn, logical_pool):
    host_pool, pool = logical_pool
    host_pool.create_volume(conn, pool, "data-x", GIB)
    assert [v["name"] for v in storage_pool.list_volumes(pool)] == ["data-x"]
    assert storage_pool.delete_volume(pool, "data-x") is True
