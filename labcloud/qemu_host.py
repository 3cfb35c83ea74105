"""A local hypervisor host: a private libvirtd inside a network namespace labcloud creates.

The system's libvirt configuration is never touched. The daemon runs in a private mount namespace
in which this host's directories under `<data_dir>/hosts/<host>/` are bind-mounted over libvirt's
system paths (config, run, state, cache, log), so it has its own socket, `host_uuid`, domains and
networks, and two hosts can run side by side on one machine. Its QEMU and dnsmasq children inherit
both namespaces. In the network namespace: an isolated libvirt network `labcloud` on bridge `lcbr0`
(DHCP), and 169.254.169.254/32 on the bridge for the guest metadata server.

The hosts of one data dir are linked (labcloud/host_link.py): their guest bridges form one L2
segment, so a guest migrated between them keeps its address and sessions, and a migration network
joins their namespaces. On the shared segment each host's bridge needs its own address: host index
0 has the subnet's gateway, host k>0 the k-th address from the top of the subnet; every host's
dnsmasq still names the gateway as the router, so a guest's route does not depend on where it
booted.

Clients in the machine's own namespace talk to the daemon over its unix socket (`uri`) and reach
guests through sockets opened inside the namespace (`common.netns.connect_in_netns`).
"""
import hashlib
import ipaddress
import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

import libvirt

from common import netns
from labcloud import host_link, processes

NETWORK_NAME = "labcloud"
BRIDGE = "lcbr0"
METADATA_IP = "169.254.169.254"
# Our directory -> the system path the daemon sees it at.
SYSTEM_PATHS = {"etc": "/etc/libvirt", "run": "/run/libvirt", "lib": "/var/lib/libvirt",
                "cache": "/var/cache/libvirt", "log": "/var/log/libvirt"}
# Processes a host's daemon leaves behind, by the pid files it writes (relative to the run dir).
CHILD_PID_DIRS = {"qemu": "qemu-system", "network": "dnsmasq"}
# libvirt's QEMU driver looks up its build-time run user and group at start-up, before reading
# qemu.conf (which then says root). Machines without libvirt-daemon-system lack them.
QEMU_ACCOUNT = "libvirt-qemu"
DYNAMIC_DHCP_ADDRESSES = 64
# The top of the subnet holds the bridge addresses of hosts 2.. (host 1 has the gateway), so at most
# this many + 1 hosts per data dir.
BRIDGE_ADDRESSES = 8
LINK_NAME = "link"  # the link namespace is lc-<digest>-link, so no host may be called that
DNSMASQ_XMLNS = "http://libvirt.org/schemas/network/dnsmasq/1.0"


def _dynamic_range(subnet):
    """A small dynamic DHCP range at the top of the subnet, below the hosts' bridge addresses, for
    guests without a host entry. The network service hands out addresses from the bottom, so the
    two meet only in a full subnet."""
    hosts = list(subnet.hosts())[:-BRIDGE_ADDRESSES]
    count = max(1, min(DYNAMIC_DHCP_ADDRESSES, len(hosts) // 4))
    return str(hosts[-count]), str(hosts[-1])


def bridge_address_of(subnet, gateway, index):
    """Host index 0 keeps the gateway; host k>0 the k-th address from the top of the subnet."""
    if index == 0:
        return str(gateway)
    if not 0 < index <= BRIDGE_ADDRESSES:
        raise ValueError(f"host index {index}: at most {BRIDGE_ADDRESSES + 1} hosts per data dir")
    return str(subnet.broadcast_address - index)


def default_index(host_name):
    """hostN -> N-1 (the order Stack starts them in); any other name -> 0."""
    match = re.fullmatch(r"host(\d+)", host_name)
    return int(match.group(1)) - 1 if match and int(match.group(1)) > 0 else 0


def netns_prefix(data_dir):
    # A hash of the data dir keeps two stacks' namespaces apart; it stays short because netns
    # names become file names and, later, parts of interface names (15 characters at most).
    return f"lc-{hashlib.sha1(os.path.abspath(data_dir).encode()).hexdigest()[:6]}-"


def link_netns(data_dir):
    return netns_prefix(data_dir) + LINK_NAME


def _link_lock(data_dir):
    return os.path.join(os.path.abspath(data_dir), "hosts", "link.lock")


def remove_link(data_dir):
    """Delete the data dir's link namespace (Stack: once all its hosts are stopped, and when it
    cleans up after a killed launcher). The hosts' own clean-up deletes it too, the last one out."""
    if not netns.exists(link_netns(data_dir)):
        return  # most calls (and every stack with the test hypervisor): nothing to lock for
    with host_link.locked(_link_lock(data_dir)):
        netns.delete(link_netns(data_dir))


class LocalQemuHost:
    def __init__(self, data_dir, host_name, subnet_cidr="10.99.0.0/22", gateway="10.99.0.1",
                 index=None):
        """index: the host's position among the data dir's hosts (Stack passes it); it picks the
        bridge and migration addresses. Default: from a name `hostN`, else 0."""
        self.data_dir = os.path.abspath(data_dir)
        self.host_name = host_name
        if host_name == LINK_NAME:
            raise ValueError(f"{LINK_NAME!r} names the data dir's link namespace, not a host")
        self.subnet = ipaddress.ip_network(subnet_cidr)
        self.gateway = gateway
        if ipaddress.ip_address(gateway) not in self.subnet:
            raise ValueError(f"gateway {gateway} is not in {subnet_cidr}")
        self.index = default_index(host_name) if index is None else index
        self.base_dir = os.path.join(self.data_dir, "hosts", host_name)
        self.dirs = {key: os.path.join(self.base_dir, key) for key in SYSTEM_PATHS}
        self.netns_prefix = netns_prefix(self.data_dir)
        self.netns = self.netns_prefix + host_name
        self.link_netns = link_netns(self.data_dir)
        self.bridge = BRIDGE
        self.network_name = NETWORK_NAME
        self.socket_path = os.path.join(self.dirs["run"], "libvirt-sock")
        self.uri = f"qemu+unix:///system?socket={self.socket_path}"
        self.pid_file = os.path.join(self.dirs["run"], "libvirtd.pid")
        self.process = None
        self.timings = {}

    @property
    def bridge_address(self):
        """This host's address on the shared guest segment (raises for an index out of range)."""
        return bridge_address_of(self.subnet, self.gateway, self.index)

    @property
    def migration_address(self):
        """Where other hosts' QEMUs reach this host's, over the link's migration network."""
        return host_link.migration_address(self.index)

    # ----- start -----
    def start(self, timeout=30):
        # First, always: whatever a previous launcher of this data dir left (it may have been
        # killed with -9 and stopped nothing), so this start finds no daemon, guest or namespace.
        self.clean_up()
        try:
            return self._start(timeout)
        except BaseException:
            self.clean_up()  # a half-started host must not leave its daemon or namespace
            raise

    def _start(self, timeout):
        self.bridge_address  # an index out of range fails here, before anything starts
        netns.create(self.netns)
        self._write_config()
        started = time.monotonic()
        self._spawn_libvirtd()
        conn = self._wait_for_socket(timeout)
        self.timings["libvirtd_start_s"] = time.monotonic() - started
        try:
            started = time.monotonic()
            self._start_network(conn)
            self.timings["network_start_s"] = time.monotonic() - started
            # Probe QEMU now (or load the cached probe), not in the first domain start.
            started = time.monotonic()
            conn.getDomainCapabilities(None, None, None, "qemu", 0)
            self.timings["qemu_capabilities_s"] = time.monotonic() - started
        finally:
            conn.close()
        netns.run(self.netns, ["ip", "addr", "replace", f"{METADATA_IP}/32", "dev", self.bridge])
        started = time.monotonic()
        with host_link.locked(_link_lock(self.data_dir)):
            host_link.ensure(self.link_netns)
            host_link.connect(self.netns, self.link_netns, self.index, self.bridge)
        self.timings["link_s"] = time.monotonic() - started
        return self

    @classmethod
    def all_in(cls, data_dir):
        """Every host that has a directory in this data dir (also those the current configuration
        no longer starts: a previous run with more hosts may have left theirs running)."""
        hosts_dir = os.path.join(os.path.abspath(data_dir), "hosts")
        if not os.path.isdir(hosts_dir):
            return []
        return [cls(data_dir, name) for name in sorted(os.listdir(hosts_dir))
                if os.path.isdir(os.path.join(hosts_dir, name))]

    def open(self):
        """A new libvirt connection to this host's daemon."""
        return libvirt.open(self.uri)

    def _host_uuid(self):
        # Generated once per host and kept, so the host keeps its identity across restarts.
        path = os.path.join(self.base_dir, "host_uuid")
        try:
            with open(path) as f:
                return str(uuid.UUID(f.read().strip()))
        except (OSError, ValueError):
            value = str(uuid.uuid4())
            with open(path, "w") as f:
                f.write(value + "\n")
            return value

    @property
    def host_uuid(self):
        return self._host_uuid()

    def _write_config(self):
        for path in self.dirs.values():
            os.makedirs(path, exist_ok=True)
        os.chmod(self.dirs["run"], 0o700)
        libvirtd_conf = "\n".join([
            # Only the unix socket: nothing listens on TCP/TLS (no --listen either).
            "listen_tls = 0", "listen_tcp = 0",
            f'unix_sock_dir = "{self.dirs["run"]}"',
            'unix_sock_rw_perms = "0700"',
            # Debian builds with polkit, which is not running here; the socket is root-only anyway.
            'auth_unix_ro = "none"', 'auth_unix_rw = "none"',
            f'host_uuid = "{self._host_uuid()}"',
            f'log_outputs = "3:file:{os.path.join(self.dirs["log"], "libvirtd.log")}"',
        ]) + "\n"
        qemu_conf = "\n".join([
            # As root, libvirt probes QEMU with KVM visible; a `libvirt-qemu` run user then cannot
            # open /dev/kvm and every start re-probes (~45 s instead of ~0.4 s).
            'user = "root"', 'group = "root"',
            # Console/stdio to files directly: no virtlogd to run.
            'stdio_handler = "file"',
            # No AppArmor/SELinux profiles are set up for these private daemons.
            'security_driver = "none"',
        ]) + "\n"
        self._write(os.path.join(self.dirs["etc"], "libvirtd.conf"), libvirtd_conf)
        self._write(os.path.join(self.dirs["etc"], "qemu.conf"), qemu_conf)
        self._seed_capabilities_cache()
        # libvirt's `default` network (192.168.122.0/24 with NAT) must never exist here.
        networks = os.path.join(self.dirs["etc"], "qemu", "networks")
        for path in (os.path.join(networks, "autostart", "default.xml"),
                     os.path.join(networks, "default.xml")):
            if os.path.lexists(path):
                os.remove(path)

    def _seed_capabilities_cache(self):
        """A new host copies a sibling host's cached QEMU probe (same machine, same binaries); the
        daemon still checks it and re-probes if it does not fit."""
        mine = os.path.join(self.dirs["cache"], "qemu", "capabilities")
        if os.path.isdir(mine) and os.listdir(mine):
            return
        hosts_dir = os.path.dirname(self.base_dir)
        for sibling in sorted(os.listdir(hosts_dir)):
            theirs = os.path.join(hosts_dir, sibling, "cache", "qemu", "capabilities")
            if sibling != self.host_name and os.path.isdir(theirs) and os.listdir(theirs):
                shutil.copytree(theirs, mine, dirs_exist_ok=True)
                return

    @staticmethod
    def _write(path, text):
        with open(path, "w") as f:
            f.write(text)

    def _mount_script(self):
        """Shell run inside the new private mount namespace before exec'ing libvirtd."""
        lines = ["set -e"]
        missing = [target for target in SYSTEM_PATHS.values() if not os.path.isdir(target)]
        if missing:
            # Without libvirt-daemon-system there is no /etc/libvirt (nor /var/lib/libvirt, ...).
            # Rather than create mount points on the machine, each parent gets a throw-away overlay
            # inside this mount namespace and they are created there.
            scratch = os.path.join(self.base_dir, "overlay")
            os.makedirs(scratch, exist_ok=True)
            lines.append(f"mount -t tmpfs lc-overlay {shlex.quote(scratch)}")
            for i, parent in enumerate(sorted({os.path.dirname(t) for t in missing})):
                upper, work = f"{scratch}/{i}/upper", f"{scratch}/{i}/work"
                lines.append(f"mkdir -p {shlex.quote(upper)} {shlex.quote(work)}")
                lines.append(f"mount -t overlay overlay -o lowerdir={parent},upperdir={upper},"
                             f"workdir={work} {shlex.quote(parent)}")
            lines.append("mkdir -p " + " ".join(shlex.quote(t) for t in missing))
        for key, target in SYSTEM_PATHS.items():
            lines.append(f"mount --bind {shlex.quote(self.dirs[key])} {shlex.quote(target)}")
        for source, target in self._account_files():
            lines.append(f"mount --bind {shlex.quote(source)} {shlex.quote(target)}")
        # Pinned to one CPU: libvirt keys its cached QEMU capabilities on the CPUID it reads at
        # start-up, and the vCPUs here answer differently, so an unpinned daemon found the cache
        # stale every other start and re-probed QEMU (~4 s) in the first domain start. libvirt
        # gives each QEMU process all host CPUs again.
        config = os.path.join(self.dirs["etc"], "libvirtd.conf")
        lines.append(f"exec taskset -c 0 libvirtd --config {shlex.quote(config)} "
                     f"--pid-file {shlex.quote(self.pid_file)}")
        return "\n".join(lines)

    def _account_files(self):
        """Copies of /etc/passwd and /etc/group with the QEMU driver's account added where it is
        missing, bind-mounted in the daemon's mount namespace only (the machine's files stay)."""
        files = {}
        for system_file in ("/etc/passwd", "/etc/group"):
            with open(system_file) as f:
                files[system_file] = [line for line in f.read().splitlines()
                                      if line.count(":") >= 2]
        lacking = [path for path, lines in files.items()
                   if not any(line.split(":", 1)[0] == QEMU_ACCOUNT for line in lines)]
        if not lacking:
            return []
        used = {line.split(":")[2] for lines in files.values() for line in lines}
        free_id = next(i for i in range(64055, 1000, -1) if str(i) not in used)
        added = {"/etc/passwd": f"{QEMU_ACCOUNT}:x:{free_id}:{free_id}::/nonexistent:"
                                "/usr/sbin/nologin",
                 "/etc/group": f"{QEMU_ACCOUNT}:x:{free_id}:"}
        overrides = []
        for system_file in lacking:
            copy = os.path.join(self.base_dir, os.path.basename(system_file))
            self._write(copy, "\n".join(files[system_file] + [added[system_file]]) + "\n")
            overrides.append((copy, system_file))
        return overrides

    def _spawn_libvirtd(self):
        # Network namespace first (nsenter, not `ip netns exec`, which remounts /sys and hides the
        # cgroup mounts libvirt needs for CPU stats), then the private mount namespace. nsenter,
        # unshare and sh all exec, so the child's PID is libvirtd's.
        argv = netns.nsenter_argv(self.netns) + [
            "unshare", "-m", "--propagation", "private", "sh", "-c", self._mount_script()]
        output = open(os.path.join(self.dirs["log"], "libvirtd.out"), "ab")
        try:
            # Own session: a Ctrl-C meant for `make run` must not kill the daemon before stop()
            # has destroyed its domains.
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            output.close()

    def _wait_for_socket(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"libvirtd for {self.host_name} exited with "
                                   f"{self.process.returncode}; see {self.dirs['log']}")
            # Waiting for the socket file first keeps libvirt from printing a connect error per try.
            if os.path.exists(self.socket_path):
                try:
                    return libvirt.open(self.uri)
                except libvirt.libvirtError:
                    pass
            time.sleep(0.02)
        raise TimeoutError(f"libvirtd for {self.host_name} did not answer within {timeout} s")

    def network_xml(self, dhcp_hosts=()):
        low, high = _dynamic_range(self.subnet)
        hosts = "".join(f"<host mac={quoteattr(h['mac'])} ip={quoteattr(h['ip'])}"
                        + (f" name={quoteattr(h['name'])}" if h.get("name") else "") + "/>"
                        for h in dhcp_hosts)
        # stp='off': a new guest's tap port forwards at once; with STP on, the guest's first
        # packets (its metadata request) can be dropped and wait out a retry.
        # Isolated by the namespace: it has no link or route out, so guests reach only the
        # namespace and each other. mode='open' makes libvirt add no firewall rules, which it would
        # otherwise reload on every DHCP entry change (~0.2 s, holding the network, so a domain
        # start waited for it).
        options = "".join(f"<dnsmasq:option value={quoteattr(f'dhcp-option={option}')}/>"
                          for option in self._dhcp_options())
        return (f"<network xmlns:dnsmasq='{DNSMASQ_XMLNS}'><name>{NETWORK_NAME}</name>"
                f"<forward mode='open'/><bridge name='{BRIDGE}' stp='off' delay='0'/>"
                f"<ip address='{self.bridge_address}' netmask='{self.subnet.netmask}'>"
                f"<dhcp><range start='{low}' end='{high}'/>{hosts}</dhcp></ip>"
                f"<dnsmasq:options>{options}</dnsmasq:options></network>")

    def _dhcp_options(self):
        # The router: dnsmasq would name its own address (this host's bridge address); all guests
        # of the segment get the subnet's gateway, wherever they booted or migrated to.
        # The classless routes (option 121, for clients that ask for it): the metadata address on
        # the guest's own link, so a guest on host k>0 whose image would otherwise send metadata
        # requests via the gateway (host 1's bridge) reaches its own host. A client that takes
        # option 121 ignores the router option, so the default route is repeated there.
        return [f"option:router,{self.gateway}",
                f"option:classless-static-route,{METADATA_IP}/32,0.0.0.0,"
                f"0.0.0.0/0,{self.gateway}"]

    def _start_network(self, conn):
        kept = []
        # Listed rather than looked up: a failed lookup makes libvirt print an error.
        for old in conn.listAllNetworks():
            if old.name() != NETWORK_NAME:
                continue
            kept = self._dhcp_hosts_to_keep(old)
            # Redefined every start so a changed subnet applies.
            if old.isActive():
                old.destroy()
            old.undefine()
        network = conn.networkDefineXML(self.network_xml(kept))
        network.setAutostart(0)
        network.create()

    def _dhcp_hosts_to_keep(self, network):
        """The host agent adds a DHCP entry (to the persistent definition too) when it creates a
        domain and removes it when it destroys one, so the entries left name guests still defined
        here. They are kept: after a restart those guests are started again through the agent's
        start path, which does not add them back, and a guest that asks DHCP (a disk image) would
        otherwise get no address. Entries outside a changed subnet are dropped."""
        root = ET.fromstring(network.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE))
        kept = []
        for host in root.findall("./ip/dhcp/host"):
            entry = {key: host.get(key) or "" for key in ("mac", "ip", "name")}
            try:
                inside = ipaddress.ip_address(entry["ip"]) in self.subnet
            except ValueError:
                inside = False
            if entry["mac"] and inside:
                kept.append(entry)
        return kept

    # ----- stop -----
    def stop(self):
        """Power every guest off, all at once, and stop the daemon and dnsmasq: see clean_up().
        The host's directories stay, and with them the domain definitions, disks and console logs:
        after the next start the guests are shut off and can be started again."""
        started = time.monotonic()
        self.clean_up()
        self.timings["stop_s"] = time.monotonic() - started

    def clean_up(self):
        """End this host's daemon and every process it started (QEMU, dnsmasq), delete the
        namespace (with its veths to the link namespace, which goes too if this was the data dir's
        last host) and empty the run dir. Safe to call at any time, by any process: what it looks
        for is found from /proc, the pid files and the namespace, not from this object's memory.

        Every QEMU gets SIGTERM at the same moment as the daemon: that is how libvirt's destroy
        powers a guest off too (QEMU exits within ~50 ms), but libvirt then spends 1-2 s of
        bookkeeping per guest and serves only 5 calls per connection at once (six guests took
        4-11 s), all for a daemon that stops next. Not an ACPI shutdown either: that waits on
        each guest, which may ignore it."""
        survivors = processes.terminate(set(self._daemon_pids() + self._leftover_pids()),
                                        poll=self._reap)
        self._reap()
        with host_link.locked(_link_lock(self.data_dir)):
            host_link.disconnect(self.netns)
            netns.delete(self.netns)
            host_link.remove_if_unused(self.link_netns, self.netns_prefix)
        if survivors:
            raise RuntimeError(f"host {self.host_name}: processes {survivors} survived SIGKILL")
        self._clear_run_dir()

    def _reap(self):
        if self.process is not None and self.process.poll() is not None:
            self.process = None  # reaped, so it does not linger as a zombie

    def _clear_run_dir(self):
        """The run dir is the daemon's /run/libvirt: state that lives as long as the daemon. Status
        files of guests that died with a killed daemon would make the next daemon 'reconnect' to
        them and signal whatever process now has their PID; stale sockets would be taken for the
        new daemon's. Emptied once nothing of this host runs, as a reboot empties /run."""
        run_dir = self.dirs["run"]
        if not os.path.isdir(run_dir):
            return
        for name in os.listdir(run_dir):
            path = os.path.join(run_dir, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.remove(path)

    def _netns_inode(self):
        try:
            return os.stat(netns.netns_path(self.netns)).st_ino
        except OSError:
            return None

    def _in_our_netns(self, pid, inode):
        try:
            return os.stat(f"/proc/{pid}/ns/net").st_ino == inode
        except OSError:
            return False

    def _daemon_pids(self):
        """Live libvirtd processes reading this host's config: the one we started, or one a
        previous launcher started (its pid file may be stale or gone, so /proc is searched)."""
        config = os.path.join(self.dirs["etc"], "libvirtd.conf").encode()
        found = {pid for pid in processes.all_pids()
                 if processes.command_name(pid) == "libvirtd" and processes.alive(pid)
                 and config in processes.read_proc(pid, "cmdline").split(b"\0")}
        if self.process is not None and self.process.poll() is None:
            found.add(self.process.pid)  # still nsenter/unshare/sh on its way to exec'ing libvirtd
        return sorted(found)

    def _leftover_pids(self):
        """QEMU and dnsmasq processes of this host: every process still in our namespace, plus those
        named by pid files in our run dir (in case the namespace is already gone)."""
        inode = self._netns_inode()
        pids = set()
        if inode is not None:
            pids.update(pid for pid in processes.all_pids() if self._in_our_netns(pid, inode))
        for subdir, command in CHILD_PID_DIRS.items():
            directory = os.path.join(self.dirs["run"], subdir)
            if not os.path.isdir(directory):
                continue
            for name in os.listdir(directory):
                if not name.endswith(".pid"):
                    continue
                pid = processes.read_pid(os.path.join(directory, name))
                if pid is None or not processes.command_name(pid).startswith(command[:15]):
                    continue
                if inode is None or self._in_our_netns(pid, inode):
                    pids.add(pid)
        return sorted(pid for pid in pids if processes.alive(pid))
