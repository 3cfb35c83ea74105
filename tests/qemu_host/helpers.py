"""Small shared pieces of the real-host tests."""
import glob
import os
import time

import libvirt

from common import netns
from labcloud.processes import alive as _alive, read_pid as _read_pid


def tiny_domain_xml(name, mac):
    """A 64 MiB TCG guest with no disk: SeaBIOS falls through to iPXE, which asks DHCP on the
    `labcloud` network - enough to prove the NIC, the bridge and dnsmasq without an image."""
    return f"""<domain type='qemu'>
  <name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os>
  <features><acpi/></features>
  <devices>
    <interface type='network'><source network='labcloud'/><mac address='{mac}'/>
      <model type='virtio'/></interface>
  </devices>
</domain>"""


def host_pids(host):
    """libvirtd, QEMU and dnsmasq PIDs this host started, from the pid files in its run dir."""
    pids = {"libvirtd": [_read_pid(host.pid_file)]}
    for kind, pattern in (("qemu", "qemu/*.pid"), ("dnsmasq", "network/*.pid")):
        # driver.pid is the QEMU driver's lock file and names the daemon itself.
        paths = [path for path in glob.glob(os.path.join(host.dirs["run"], pattern))
                 if os.path.basename(path) != "driver.pid"]
        pids[kind] = [_read_pid(path) for path in paths]
    return {kind: [pid for pid in found if pid] for kind, found in pids.items()}


def alive(pids):
    """Those still running (a zombie left for PID 1 to reap counts as gone)."""
    return [pid for found in pids.values() for pid in found if _alive(pid)]


def ip_addresses(host, device):
    out = netns.run(host.netns, ["ip", "-o", "-4", "addr", "show", "dev", device]).stdout
    return {line.split()[3] for line in out.splitlines()}


def wait_for(predicate, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def network_names(conn):
    return sorted(network.name() for network in conn.listAllNetworks())


def destroy_quietly(domain):
    try:
        domain.destroy()
    except libvirt.libvirtError:
        pass
