"""Domain XML for one labcloud instance, built from a loaded DomainSpec."""
import os
import xml.etree.ElementTree as ET

from hostagent.hypervisor import is_test_uri

# Marks the domains labcloud defined, so the agent leaves other domains on the host alone.
METADATA_NS = "https://labcloud.dev/xmlns/instance/1.0"
METADATA_PREFIX = "labcloud"
CPU_PERIOD_US = 100000
BALLOON_STATS_PERIOD_S = 10

ET.register_namespace(METADATA_PREFIX, METADATA_NS)  # <labcloud:instance>, not <ns0:instance>


def domain_type(config, uri):
    """'test' for the test driver (it accepts nothing else); 'qemu' (TCG) or 'kvm' otherwise."""
    return "test" if is_test_uri(uri) else config.get("DOMAIN_TYPE", "qemu")


def cpu_quota_us(cap_percent, vcpus):
    """CFS quota per period for a cap in percent of one vCPU per vCPU; None when uncapped."""
    if not cap_percent:
        return None
    return cap_percent * vcpus * CPU_PERIOD_US // 100


def _sub(parent, tag, text=None, **attrs):
    element = ET.SubElement(parent, tag, {k: str(v) for k, v in attrs.items()})
    if text is not None:
        element.text = str(text)
    return element


def build_domain_xml(spec, config, uri):
    root = ET.Element("domain", type=domain_type(config, uri))
    _sub(root, "name", spec["name"])
    _sub(root, "uuid", spec["instance_id"])
    metadata = _sub(root, "metadata")
    ET.SubElement(metadata, f"{{{METADATA_NS}}}instance",
                  {"id": spec["instance_id"], "ip": spec["ip"], "mac": spec["mac"]})
    _sub(root, "memory", spec["memory_mib"], unit="MiB")
    _sub(root, "vcpu", spec["vcpus"])

    cputune = _sub(root, "cputune")
    _sub(cputune, "shares", spec["cpu_weight"])
    _sub(cputune, "period", CPU_PERIOD_US)
    quota = cpu_quota_us(spec["cpu_cap_percent"], spec["vcpus"])
    if quota is not None:
        _sub(cputune, "quota", quota)

    os_element = _sub(root, "os")
    _sub(os_element, "type", "hvm")
    kernel = config.get("GUEST_KERNEL")
    if kernel and not is_test_uri(uri):
        # Direct kernel boot (see HYPERVISOR.md: an uncompressed PVH kernel boots ~3 s faster
        # under TCG); the cmdline may name the guest's address as {ip} and {mac}.
        _sub(os_element, "kernel", kernel)
        if config.get("GUEST_INITRD"):
            _sub(os_element, "initrd", config["GUEST_INITRD"])
        cmdline = config.get("GUEST_CMDLINE") or "console=ttyS0 root=/dev/vda"
        _sub(os_element, "cmdline", cmdline.format(ip=spec["ip"], mac=spec["mac"]))
    else:
        _sub(os_element, "boot", dev="hd")
    # Without ACPI libvirt passes -no-acpi: no ACPI shutdown and no disk hot-unplug.
    _sub(_sub(root, "features"), "acpi")
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "restart")
    _sub(root, "on_crash", "destroy")

    devices = _sub(root, "devices")
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type="qcow2")
    _sub(disk, "source", file=spec["disk_path"])
    _sub(disk, "target", dev="vda", bus="virtio")

    interface = _sub(devices, "interface", type="network")
    _sub(interface, "mac", address=spec["mac"])
    _sub(interface, "source", network=config.get("HOST_NETWORK", "default"))
    _sub(interface, "model", type="virtio")

    if not is_test_uri(uri):
        # The test driver has no character devices; real guests log their console to a file
        # the instances service can serve as console output.
        log_path = os.path.join(config.get("CONSOLE_DIR") or "var/console", f"{spec['instance_id']}.log")
        serial = _sub(devices, "serial", type="file")
        _sub(serial, "source", path=os.path.abspath(log_path))
        _sub(serial, "target", port=0)

    balloon = _sub(devices, "memballoon", model="virtio")
    _sub(balloon, "stats", period=BALLOON_STATS_PERIOD_S)
    return ET.tostring(root, encoding="unicode")

