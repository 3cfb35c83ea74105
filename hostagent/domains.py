"""Domain lifecycle on one host. Functions take a libvirt connection and are run in a native
thread by HypervisorConnection.run (see hypervisor.py): libvirt and plain Python only."""
import libvirt

from hostagent.domain_xml import METADATA_NS

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
    return {"instance_id": domain.UUIDString(), "state": state_name(domain.state()[0])}


def is_managed(domain):
    """True for domains labcloud defined (they carry our metadata element)."""
    try:
        domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS, 0)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN_METADATA, libvirt.VIR_ERR_NO_DOMAIN):
            return False
        raise
    return True


def managed_domains(conn):
    return [d for d in conn.listAllDomains(0) if is_managed(d)]


def find_domain(conn, instance_id):
    try:
        return conn.lookupByUUIDString(instance_id)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise


def create_domain(conn, instance_id, xml):
    """Define and start; an existing domain with this UUID is only started (at-least-once RPC)."""
    domain = find_domain(conn, instance_id)
    if domain is None:
        domain = conn.defineXML(xml)
    if not domain.isActive():
        try:
            domain.create()
        except libvirt.libvirtError as exc:
            # Started by a concurrent redelivery of the same request between the two calls.
            if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID or not domain.isActive():
                raise
    return describe(domain)


def destroy_domain(conn, instance_id):
    """Stop and forget the domain. False when there was none (already deleted)."""
    domain = find_domain(conn, instance_id)
    if domain is None:
        return False
    try:
        domain.destroy()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:  # not running: fine
            raise
    _undefine(domain)
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
