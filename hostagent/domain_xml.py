"""Domain XML for one labcloud instance, built from a loaded DomainSpec."""
import xml.etree.ElementTree as ET

from hostagent.console import console_log_path
from hostagent.hypervisor import is_test_uri

# Marks the domains labcloud defined, so the agent leaves other domains on the host alone.
METADATA_NS = "https://labcloud.dev/xmlns/instance/1.0"
METADATA_PREFIX = "labcloud"
CPU_PERIOD_US = 100000
BALLOON_STATS_PERIOD_S = 2
DEFAULT_CMDLINE = "console=ttyS0 root=/dev/vda"

ET.register_namespace(METADATA_PREFIX, METADATA_NS)  # <labcloud:instance>, not <ns0:instance>


def domain_type(config, uri):
    """'test' for the test driver (it accepts nothing else); 'qemu' (TCG) or 'kvm' otherwise."""
    return "test" if is_test_uri(uri) else config.get("DOMAIN_TYPE", "qemu")


# XenServer's default weight 256 is cgroup v1's default cpu.shares 1024: a guest of default weight
# competes evenly with anything else on the host, and weights 1-65536 map onto shares 4-262144
# (cgroup v1 allows 2-262144).
SHARES_PER_WEIGHT = 4


def cpu_shares(weight):
    return weight * SHARES_PER_WEIGHT


def global_quota_us(cap):
    """CFS quota per period of the whole guest (every vCPU and QEMU's own threads) for a cap in
    percent of ONE vCPU (XenServer's meaning): cap 35 = 35 ms of CPU per 100 ms, whatever the
    vCPU count. None when uncapped. (A per-vCPU quota would let each vCPU have the cap.)"""
    if not cap:
        return None
    return cap * CPU_PERIOD_US // 100


def cputune_element(weight, cap):
    cputune = ET.Element("cputune")
    _sub(cputune, "shares", cpu_shares(weight))
    quota = global_quota_us(cap)
    if quota is not None:
        _sub(cputune, "global_period", CPU_PERIOD_US)
        _sub(cputune, "global_quota", quota)
    return cputune


def _sub(parent, tag, text=None, **attrs):
    element = ET.SubElement(parent, tag, {k: str(v) for k, v in attrs.items()})
    if text is not None:
        element.text = str(text)
    return element


def boot_config(spec, config):
    """(kernel, initrd, cmdline) for direct kernel boot, or None to boot the disk. The spec's own
    kernel wins; GUEST_KERNEL/GUEST_INITRD/GUEST_CMDLINE are a host-wide fallback (its cmdline may
    name the guest's address as {ip} and {mac})."""
    if spec.get("kernel"):
        return spec["kernel"], spec.get("initrd"), spec.get("cmdline") or DEFAULT_CMDLINE
    if config.get("GUEST_KERNEL"):
        cmdline = config.get("GUEST_CMDLINE") or DEFAULT_CMDLINE
        return (config["GUEST_KERNEL"], config.get("GUEST_INITRD") or None,
                cmdline.format(ip=spec["ip"], mac=spec["mac"]))
    return None


def set_disk_source(disk, path):
    """Point a <disk> at `path`: a block device (a logical pool's LV, under /dev) as
    type='block' <source dev=...>, anything else as a file (a dir pool's qcow2)."""
    block = path.startswith("/dev/")
    disk.set("type", "block" if block else "file")
    source = disk.find("source")
    if source is None:
        source = ET.SubElement(disk, "source")
    source.attrib.pop("file", None)
    source.attrib.pop("dev", None)
    source.set("dev" if block else "file", path)
    return disk


def disk_element(path, device, fmt):
    """A virtio <disk> on `device` (vda, vdb, ...) holding the volume at `path` in format `fmt`
    (qcow2 on a dir pool, raw on a logical one)."""
    disk = ET.Element("disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type=fmt)
    set_disk_source(disk, path)
    ET.SubElement(disk, "target", dev=device, bus="virtio")
    return disk


def build_domain_xml(spec, config, uri, ssh_port=None, disk_format="qcow2"):
    """The domain's XML. `ssh_port` (the agent's forward to the guest's port 22) is kept in our
    metadata element so a restarted agent forwards the same port again. `disk_format` is the
    host's pool's (hostagent/pools): the root disk's driver type."""
    test_driver = is_test_uri(uri)
    root = ET.Element("domain", type=domain_type(config, uri))
    _sub(root, "name", spec["name"])
    _sub(root, "uuid", spec["instance_id"])
    metadata = _sub(root, "metadata")
    labcloud = {"id": spec["instance_id"], "ip": spec["ip"], "mac": spec["mac"],
                # tc limits are not libvirt's: kept here so every start of the guest applies them
                "bandwidth_in_kib": str(spec["bandwidth_in_kib"]),
                "bandwidth_out_kib": str(spec["bandwidth_out_kib"])}
    if spec.get("hostname"):
        labcloud["hostname"] = spec["hostname"]
    if ssh_port is not None:
        labcloud["ssh_port"] = str(ssh_port)
    ET.SubElement(metadata, f"{{{METADATA_NS}}}instance", labcloud)
    # Defined with its maximum; the balloon holds it at memory_mib (changed live, up to the maximum).
    _sub(root, "memory", spec["max_memory_mib"] or spec["memory_mib"], unit="MiB")
    _sub(root, "currentMemory", spec["memory_mib"], unit="MiB")
    _sub(root, "vcpu", spec["vcpus"])
    root.append(cputune_element(spec["cpu_weight"], spec["cpu_cap"]))

    os_element = _sub(root, "os")
    boot = None if test_driver else boot_config(spec, config)  # the test driver cannot boot kernels
    if test_driver:
        _sub(os_element, "type", "hvm")
    else:
        _sub(os_element, "type", "hvm", arch="x86_64", machine="pc")
    if boot:
        # Direct kernel boot (see HYPERVISOR.md: an uncompressed PVH kernel boots ~3 s faster
        # under TCG than a bootloader and a compressed kernel).
        kernel, initrd, cmdline = boot
        _sub(os_element, "kernel", kernel)
        if initrd:
            _sub(os_element, "initrd", initrd)
        _sub(os_element, "cmdline", cmdline)
    else:
        _sub(os_element, "boot", dev="hd")
    # Without ACPI libvirt passes -no-acpi: no ACPI shutdown and no disk hot-unplug.
    _sub(_sub(root, "features"), "acpi")
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "restart")
    _sub(root, "on_crash", "destroy")

    devices = _sub(root, "devices")
    if not test_driver:
        # libvirt adds a USB controller unless told not to; nothing of a cloud guest uses it and
        # its probe costs the guest's kernel ~0.35 s of boot under TCG.
        _sub(devices, "controller", type="usb", model="none")
    devices.append(disk_element(spec["disk_path"], "vda", disk_format))

    interface = _sub(devices, "interface", type="network")
    _sub(interface, "mac", address=spec["mac"])
    _sub(interface, "source", network=config.get("HOST_NETWORK", "default"))
    _sub(interface, "model", type="virtio")
    if not test_driver:
        # No iPXE option ROM: guests boot their kernel or their disk, never the network, and
        # the firmware would spend time initialising it on every start.
        _sub(interface, "rom", enabled="no")

    if not test_driver:
        # The test driver has no character devices; real guests log their console to a file the
        # agent serves as console output. <console> names the same port as the primary console.
        log_path = console_log_path(config, spec["instance_id"])
        serial = _sub(devices, "serial", type="file")
        # append: a start after a stop keeps the earlier boots' output (the agent trims on read)
        _sub(serial, "source", path=log_path, append="on")
        _sub(serial, "target", port=0)
        console = _sub(devices, "console", type="file")
        _sub(console, "source", path=log_path)
        _sub(console, "target", type="serial", port=0)
        # Entropy: without a virtio-rng the guest's first key generation (dropbear's host key)
        # waits about a second for the kernel's CRNG to be seeded.
        rng = _sub(devices, "rng", model="virtio")
        _sub(rng, "backend", "/dev/urandom", model="random")

    # Stats every 2 s: libvirt's memory stats come from the guest's balloon driver at this period.
    balloon = _sub(devices, "memballoon", model="virtio")
    _sub(balloon, "stats", period=BALLOON_STATS_PERIOD_S)
    return ET.tostring(root, encoding="unicode")
