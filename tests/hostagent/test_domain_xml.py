"""Unit tests of the domain XML builder, parsed back with xml.etree."""
import xml.etree.ElementTree as ET

import pytest

from common.errors import InvalidInput
from common.schemas import load
from hostagent.domain_xml import METADATA_NS, build_domain_xml, cpu_shares, global_quota_us
from hostagent.schemas import DomainSpec

SPEC = {"instance_id": "7A1B2C3D-0000-4000-8000-000000000001", "name": "web-1", "vcpus": 2,
        "memory_mib": 256, "max_memory_mib": 512, "cpu_weight": 512, "cpu_cap": 50,
        "disk_path": "/pools/h1/root-x.qcow2", "mac": "aa:00:0a:63:00:02", "ip": "10.99.0.2"}


def parse(spec=SPEC, config=None, uri="qemu:///system"):
    return ET.fromstring(build_domain_xml(load(DomainSpec, spec), config or {}, uri))


def test_identity_size_and_cpu_tuning():
    root = parse()
    assert root.get("type") == "qemu"
    assert root.findtext("uuid") == "7a1b2c3d-0000-4000-8000-000000000001"  # canonical form
    assert root.findtext("name") == "web-1"
    # Defined with the maximum; the balloon holds it at memory_mib.
    assert root.find("memory").get("unit") == "MiB" and root.findtext("memory") == "512"
    assert root.find("currentMemory").get("unit") == "MiB" and root.findtext("currentMemory") == "256"
    assert root.findtext("vcpu") == "2"
    assert root.findtext("cputune/shares") == "2048"  # weight 512 = twice cgroup's default 1024
    # XenServer's cap: 50% of ONE vCPU for the whole 2-vCPU guest, not 50% of each vCPU.
    assert root.findtext("cputune/global_period") == "100000"
    assert root.findtext("cputune/global_quota") == "50000"
    assert root.find("cputune/quota") is None and root.find("cputune/period") is None
    assert root.find("features/acpi") is not None
    assert root.find(f"metadata/{{{METADATA_NS}}}instance").get("ip") == "10.99.0.2"


def test_uncapped_has_no_quota():
    assert parse({**SPEC, "cpu_cap": 0}).find("cputune/global_quota") is None
    assert global_quota_us(0) is None and global_quota_us(100) == 100000
    assert global_quota_us(150) == 150000 and global_quota_us(1) == 1000   # libvirt's minimum


def test_weights_map_onto_cgroup_shares_in_proportion():
    assert cpu_shares(256) == 1024 and cpu_shares(512) == 2 * cpu_shares(256)
    assert cpu_shares(1) == 4 and cpu_shares(65536) == 262144   # cgroup v1 allows 2-262144


def test_memory_defaults_to_its_maximum_and_bandwidth_is_recorded():
    root = parse({**SPEC, "max_memory_mib": None, "bandwidth_in_kib": 512})
    assert root.findtext("memory") == root.findtext("currentMemory") == "256"
    labcloud = root.find(f"metadata/{{{METADATA_NS}}}instance")
    assert labcloud.get("bandwidth_in_kib") == "512" and labcloud.get("bandwidth_out_kib") == "0"


@pytest.mark.parametrize("changes,field", [
    ({"vcpus": 2, "cpu_cap": 201}, "cpu_cap"),                     # more than 100 x 2 vCPUs
    ({"memory_mib": 600, "max_memory_mib": 512}, "memory_mib"),    # above its maximum
])
def test_limits_that_depend_on_the_size(changes, field):
    with pytest.raises(InvalidInput) as err:
        load(DomainSpec, {**SPEC, **changes})
    assert set(err.value.fields) == {field}
    load(DomainSpec, {**SPEC, "vcpus": 2, "cpu_cap": 200})  # the most a 2-vCPU guest may have


def test_devices():
    devices = parse(config={"HOST_NETWORK": "labnet", "CONSOLE_DIR": "/var/console"}).find("devices")
    disk = devices.find("disk")
    assert disk.find("driver").get("type") == "qcow2"
    assert disk.find("source").get("file") == SPEC["disk_path"]
    assert disk.find("target").attrib == {"dev": "vda", "bus": "virtio"}
    nic = devices.find("interface")
    assert nic.get("type") == "network"
    assert nic.find("mac").get("address") == SPEC["mac"]
    assert nic.find("source").get("network") == "labnet"
    assert nic.find("model").get("type") == "virtio"
    assert nic.find("rom").attrib == {"enabled": "no"}  # no network boot ROM to initialise
    assert devices.find("memballoon").get("model") == "virtio"
    assert devices.find("memballoon/stats").get("period")
    assert devices.find("serial/source").get("path") == \
        "/var/console/7a1b2c3d-0000-4000-8000-000000000001.log"
    # No USB controller (libvirt would add one): its probe slows the guest's boot.
    assert [c.attrib for c in devices.findall("controller")] == [{"type": "usb", "model": "none"}]
    assert parse(uri="test:///default").find("devices/controller") is None


def test_domain_type_follows_uri_and_config():
    assert parse(config={"DOMAIN_TYPE": "kvm"}).get("type") == "kvm"
    test_root = parse(uri="test:///default")
    assert test_root.get("type") == "test"
    assert test_root.find("devices/serial") is None  # the test driver has no character devices
    assert test_root.find("devices/interface/source").get("network") == "default"


@pytest.mark.parametrize("field,value", [
    ("vcpus", 0), ("vcpus", 65), ("memory_mib", 16), ("cpu_weight", 0), ("cpu_weight", 65537), ("cpu_cap", -1),
    ("bandwidth_in_kib", -1),
    ("mac", "AA-00-0a-63-00-02"), ("ip", "10.99.0.300"), ("instance_id", "not-a-uuid"),
    ("disk_path", "relative.qcow2"), ("name", "bad name"),
])
def test_spec_validation_names_the_field(field, value):
    with pytest.raises(InvalidInput) as err:
        load(DomainSpec, {**SPEC, field: value})
    assert set(err.value.fields) == {field}


def test_direct_kernel_boot_when_configured():
    root = parse(config={"GUEST_KERNEL": "/k/vmlinux", "GUEST_INITRD": "/k/initrd.gz",
                         "GUEST_CMDLINE": "console=ttyS0 ip={ip}"})
    assert root.findtext("os/kernel") == "/k/vmlinux" and root.findtext("os/initrd") == "/k/initrd.gz"
    assert root.findtext("os/cmdline") == "console=ttyS0 ip=10.99.0.2"
    assert root.find("os/boot") is None
    assert parse(config={"GUEST_KERNEL": "/k/vmlinux"}, uri="test:///default").find("os/kernel") is None


def test_kernel_boot_from_the_spec():
    spec = {**SPEC, "kernel": "/images/tiny/vmlinux", "initrd": "/images/tiny/initrd.gz",
            "cmdline": "console=ttyS0 ip=10.99.0.2::10.99.0.1:255.255.252.0:web-1:eth0:off",
            "hostname": "web-1"}
    # The spec's kernel wins over the host-wide fallback, and its cmdline is used as given.
    root = parse(spec, config={"GUEST_KERNEL": "/other/vmlinux", "GUEST_CMDLINE": "x ip={ip}"})
    os_element = root.find("os")
    assert os_element.find("type").attrib == {"arch": "x86_64", "machine": "pc"}
    assert os_element.findtext("type") == "hvm"
    assert os_element.findtext("kernel") == "/images/tiny/vmlinux"
    assert os_element.findtext("initrd") == "/images/tiny/initrd.gz"
    assert os_element.findtext("cmdline") == spec["cmdline"]
    assert os_element.find("boot") is None
    assert root.findtext("on_poweroff") == "destroy" and root.findtext("on_reboot") == "restart"
    assert root.find(f"metadata/{{{METADATA_NS}}}instance").get("hostname") == "web-1"


def test_serial_console_and_balloon_stats():
    root = parse(config={"CONSOLE_DIR": "/var/console/h1"})
    log_path = "/var/console/h1/7a1b2c3d-0000-4000-8000-000000000001.log"
    serial = root.find("devices/serial")
    assert serial.get("type") == "file" and serial.find("source").get("path") == log_path
    console = root.find("devices/console")
    assert console.get("type") == "file" and console.find("source").get("path") == log_path
    assert console.find("target").attrib == {"type": "serial", "port": "0"}
    assert root.find("devices/memballoon/stats").get("period") == "2"


def test_ssh_port_is_recorded_in_the_metadata():
    spec = load(DomainSpec, SPEC)
    root = ET.fromstring(build_domain_xml(spec, {}, "qemu:///system", ssh_port=22007))
    assert root.find(f"metadata/{{{METADATA_NS}}}instance").get("ssh_port") == "22007"
    assert ET.fromstring(build_domain_xml(spec, {}, "qemu:///system")).find(
        f"metadata/{{{METADATA_NS}}}instance").get("ssh_port") is None


def test_test_driver_ignores_the_spec_kernel():
    root = parse({**SPEC, "kernel": "/k/vmlinux"}, uri="test:///default")
    assert root.find("os/kernel") is None and root.find("os/type").attrib == {}
    assert root.find("devices/console") is None


@pytest.mark.parametrize("field,value", [
    ("kernel", "vmlinux"), ("initrd", "rel/initrd.gz"), ("hostname", "bad_host"), ("hostname", "-x"),
])
def test_boot_fields_validation(field, value):
    with pytest.raises(InvalidInput) as err:
        load(DomainSpec, {**SPEC, field: value})
    assert set(err.value.fields) == {field}


def test_real_guests_get_an_entropy_source_the_test_driver_does_not():
    rng = parse().find("devices/rng")
    assert rng.get("model") == "virtio"
    assert rng.find("backend").attrib == {"model": "random"} and rng.find("backend").text == "/dev/urandom"
    assert parse(uri="test:///default").find("devices/rng") is None


def test_root_disk_follows_the_pool_kind():
    """A dir pool's qcow2 file; a logical pool's raw LV, a block device."""
    on_dir = ET.fromstring(build_domain_xml(load(DomainSpec, SPEC), {}, "qemu:///system", None, "qcow2"))
    disk = on_dir.find("devices/disk")
    assert (disk.get("type"), disk.find("driver").get("type")) == ("file", "qcow2")
    assert disk.find("source").attrib == {"file": SPEC["disk_path"]}
    lv = {**SPEC, "disk_path": "/dev/labcloud/root-7a1b2c3d-0000-4000-8000-000000000001"}
    on_logical = ET.fromstring(build_domain_xml(load(DomainSpec, lv), {}, "qemu:///system", None, "raw"))
    disk = on_logical.find("devices/disk")
    assert (disk.get("type"), disk.find("driver").get("type")) == ("block", "raw")
    assert disk.find("source").attrib == {"dev": lv["disk_path"]}
    assert disk.find("target").attrib == {"dev": "vda", "bus": "virtio"}
