"""What a migration asks of libvirt for the destination's disk, by the destination pool's format
(hostagent/pools): the flags (the top layer or the whole disk copied) and the destination's disk
definition."""
import xml.etree.ElementTree as ET

import libvirt

from hostagent.migration import COLD_FLAGS, LIVE_FLAGS, destination_xml, migrate_flags

SOURCE_XML = """<domain type='qemu'><name>vm</name><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/pools/h1/root-a.qcow2' index='2'/>
<backingStore type='file' index='1'><format type='qcow2'/><source file='/pools/h1/image-1.qcow2'/></backingStore>
<target dev='vda' bus='virtio'/></disk>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/pools/h1/data-b.qcow2'/>
<target dev='vdb' bus='virtio'/></disk>
</devices></domain>"""


def test_qcow2_destination_gets_the_top_layer_and_raw_the_whole_disk():
    assert migrate_flags(cold=False) == LIVE_FLAGS
    assert migrate_flags(cold=True, disk_format="qcow2") == COLD_FLAGS
    for cold in (False, True):
        flags = migrate_flags(cold, "raw")
        assert flags & libvirt.VIR_MIGRATE_NON_SHARED_DISK
        assert not flags & libvirt.VIR_MIGRATE_NON_SHARED_INC
        assert flags & libvirt.VIR_MIGRATE_PERSIST_DEST and flags & libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
        assert bool(flags & libvirt.VIR_MIGRATE_LIVE) is not cold


def test_destination_disk_on_a_logical_pool_is_a_raw_block_device():
    root = ET.fromstring(destination_xml(SOURCE_XML, "/dev/vg1/root-a", None, None, "raw"))
    vda, vdb = root.findall("devices/disk")
    assert vda.get("type") == "block" and vda.find("driver").get("type") == "raw"
    assert vda.find("source").attrib == {"dev": "/dev/vg1/root-a", "index": "2"}
    assert vda.find("backingStore") is None  # a whole copy: no chain on the destination
    assert vdb.find("source").get("file") == "/pools/h1/data-b.qcow2"  # only the root disk moves


def test_destination_disk_on_a_dir_pool_keeps_its_chain():
    root = ET.fromstring(destination_xml(SOURCE_XML, "/pools/h2/root-a.qcow2", None, None, "qcow2"))
    vda = root.find("devices/disk")
    assert vda.get("type") == "file" and vda.find("driver").get("type") == "qcow2"
    assert vda.find("source").get("file") == "/pools/h2/root-a.qcow2"
    assert vda.find("backingStore") is not None
    unchanged = ET.fromstring(destination_xml(SOURCE_XML, "/pools/h2/root-a.qcow2", None, None))
    assert unchanged.find("devices/disk/driver").get("type") == "qcow2"
