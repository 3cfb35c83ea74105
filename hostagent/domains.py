"""Domain lifecycle on one host. Functions take a libvirt connection and are run in a native
thread by HypervisorConnection.run (see hypervisor.py): libvirt and plain Python only."""
import xml.etree.ElementTree as ET

import libvirt

from common.errors import NotFound
from hostagent.domain_xml import METADATA_NS, METADATA_PREFIX
from hostagent.sequence import next_seq

STATE_NAMES = {
    libvirt.VIR_DOMAIN_NOSTATE: "nostate", libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "blocked", libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutdown", libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "crashed", libvirt.VIR_DOMAIN_PMSUSPENDED: "pmsuspended",
}
# Everything a persistent domain may carry that would make a plain undefine() fail.
FULL_UNDEFINE_FLAGS = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                       | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                       | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
                       | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
BASIC_UNDEFINE_FLAGS = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                        | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)


def state_name(code):
    return STATE_NAMES.get(code, "unknown")


def describe(domain):
    """{instance_id, state, seq}: seq is taken right after the state was read, so any lifecycle
    event libvirt reported before the read carries a lower seq (see sequence.py)."""
    state = state_name(domain.state()[0])
    return {"instance_id": domain.UUIDString(), "state": state, "seq": next_seq()}


def is_managed(domain):
    """True for domains labcloud defined (they carry our metadata element)."""
    try:
        domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS, 0)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN_METADATA, libvirt.VIR_ERR_NO_DOMAIN):
            return False
        raise
    return True


def is_managed_id(conn, instance_id):
    domain = find_domain(conn, instance_id)
    return domain is not None and is_managed(domain)


def instance_metadata(domain):
    """The attributes of our <labcloud:instance> element (id, ip, mac, ssh_port, hostname), or
    None for a domain labcloud did not define."""
    try:
        xml = domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS, 0)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN_METADATA, libvirt.VIR_ERR_NO_DOMAIN):
            return None
        raise
    return dict(ET.fromstring(xml).attrib)


def set_instance_metadata(domain, **attrs):
    """Add/replace attributes of our metadata element, in the persistent definition and, when the
    domain runs, in the live one (so both survive the next restart of the agent)."""
    element = ET.Element("instance", instance_metadata(domain) or {})
    element.attrib.update({k: str(v) for k, v in attrs.items()})
    flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
    if domain.isActive():
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    domain.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, ET.tostring(element, encoding="unicode"),
                       METADATA_PREFIX, METADATA_NS, flags)


def managed_domains(conn):
    return [d for d in conn.listAllDomains(0) if is_managed(d)]


def find_domain(conn, instance_id):
    try:
        return conn.lookupByUUIDString(instance_id)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise


def require_domain(conn, instance_id):
    domain = find_domain(conn, instance_id)
    if domain is None or not is_managed(domain):
        raise NotFound(f"no domain {instance_id} on this host")
    return domain


def existing_metadata(conn, instance_id):
    """Our metadata of the domain with this UUID, or None when there is no such domain."""
    domain = find_domain(conn, instance_id)
    return None if domain is None else instance_metadata(domain)


def create_domain(conn, instance_id, xml):
    """Define and start; an existing domain with this UUID is only started (at-least-once RPC)."""
    domain = find_domain(conn, instance_id)
    if domain is None:
        domain = conn.defineXML(xml)
    _start(domain)
    return describe(domain)


def _start(domain):
    if not domain.isActive():
        try:
            domain.create()
        except libvirt.libvirtError as exc:
            # Started by a concurrent redelivery of the same request between the two calls.
            if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID or not domain.isActive():
                raise


def start_domain(conn, instance_id):
    domain = require_domain(conn, instance_id)
    _start(domain)
    return describe(domain)


def domain_state(conn, instance_id):
    return describe(require_domain(conn, instance_id))


def request_shutdown(conn, instance_id):
    """Press the ACPI power button of a running domain; the guest decides when it is off."""
    domain = require_domain(conn, instance_id)
    if domain.isActive():
        _ignore_not_running(domain.shutdown)
    return describe(domain)


def request_reboot(conn, instance_id):
    """Ask the guest to reboot (ACPI); libvirt restarts it once the guest has shut down."""
    domain = require_domain(conn, instance_id)
    _ignore_not_running(lambda: domain.reboot(0))
    return describe(domain)


def power_off(conn, instance_id):
    """Pull the plug: the guest gets no say."""
    domain = require_domain(conn, instance_id)
    _ignore_not_running(domain.destroy)
    return describe(domain)


def _ignore_not_running(call):
    try:
        call()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:  # stopped meanwhile: fine
            raise


def forward_targets(conn):
    """[(instance_id, metadata, is_active)] of labcloud's domains, for restoring SSH forwards."""
    targets = []
    for domain in conn.listAllDomains(0):
        metadata = instance_metadata(domain)
        if metadata is not None:
            targets.append((domain.UUIDString(), metadata, bool(domain.isActive())))
    return targets


def record_ssh_port(conn, instance_id, port):
    domain = find_domain(conn, instance_id)
    if domain is not None:
        set_instance_metadata(domain, ssh_port=port)


def destroy_domain(conn, instance_id):
    """Forget, then stop the domain. False when there was none (already deleted).

    In that order because a delete may race a power action in flight (a reboot that powers the
    guest off and starts it again): once undefined, a stopped domain no longer exists and cannot be
    started, and a running one is transient and disappears with the destroy."""
    domain = find_domain(conn, instance_id)
    if domain is None:
        return False
    _undefine(domain)
    try:
        domain.destroy()
    except libvirt.libvirtError as exc:
        # not running (already gone once undefined): fine
        if exc.get_error_code() not in (libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_ERR_NO_DOMAIN):
            raise
    return True


def _undefine(domain):
    try:
        domain.undefineFlags(FULL_UNDEFINE_FLAGS)
        return
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return
        # Drivers without NVRAM/checkpoint support (the test driver) reject those flags.
        if exc.get_error_code() not in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT,
                                        libvirt.VIR_ERR_OPERATION_UNSUPPORTED):
            raise
    try:
        domain.undefineFlags(BASIC_UNDEFINE_FLAGS)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise


def list_domains(conn):
    return [describe(d) for d in managed_domains(conn)]
