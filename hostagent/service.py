"""Host agent entry points: thin wrappers that load the request, run the operation on the
hypervisor (off the eventlet hub, see hypervisor.py) and dump the answer.

One class per host: `make_service("h1")` serves RPC on `hostagent_h1`; every host publishes its
events under the one source `hostagent` (HostEventDispatcher), so listeners need no host list.
"""
import collections
import datetime as dt
import logging
import os

from nameko.dependency_providers import Config
from nameko.events import EventDispatcher
from nameko.messaging import Publisher
from nameko.rpc import rpc
from nameko.standalone.events import get_event_exchange

from common.clock import Clock
from common.errors import HostOperationFailed
from common.hostrpc import HOST_EVENT_SOURCE, host_service_name
from common.prometheus import ProcessMetrics
from common.schemas import dump, load
from common.timers import config_timer
from eventlet import semaphore, tpool

from hostagent import (bandwidth, console, dhcp, domains, host_stats, image_export, migration, neighbours, power,
                       routed, shares, stats, storage_pool)
from hostagent import pools, volume_devices
from hostagent.domain_xml import build_domain_xml
from hostagent.hypervisor import Hypervisor
from hostagent.lifecycle import DomainEvents, domain_lifecycle_handler
from hostagent.metadata_server import MetadataServer
from hostagent.metrics_http import MetricsHttp
from hostagent.port_forward import SshForwarding
from hostagent.schemas import (
    AttachDiskRequest, CloneVolumeRequest, DetachDiskRequest, DiskAttachmentSchema, DomainDisksRequest,
    DomainDisksSchema, PoolUsageSchema)
from hostagent.schemas import (
    ConsoleOutputSchema, CreateVolumeRequest, DeleteVolumeRequest, DestroyDomainRequest,
    DomainLifecycleSchema, DomainSharesRequest, DomainSharesSchema, DomainSpec, DomainSshReadySchema, DomainStateSchema, DomainStatsSchema,
    EnsureImageRequest, FinishIncomingRequest, GetConsoleRequest, GrowVolumeRequest, HeartbeatSchema, HostInfoSchema,
    HostInventorySchema, IncomingSchema, MigrateDomainRequest, MigrationResultSchema, PrepareIncomingRequest,
    RebootDomainRequest, StartDomainRequest, StopDomainRequest, VolumeInfoSchema)
from hostagent import sequence
from hostagent.netfilter import HostFirewall
from hostagent.schemas import (
    ExportedVolumeSchema, ExportVolumeRequest, NetworkRulesRequest, NetworkRulesSchema, RoutedNetworkNameRequest,
    RoutedNetworkSchema, RoutedNetworkSpec)
from hostagent.ssh_readiness import SshReadiness, ssh_ready_handler

log = logging.getLogger(__name__)
# dhcp.py reads then writes the network's host list: one update at a time per agent process.
_dhcp_lock = semaphore.Semaphore()
# Operations on one storage pool (defining it, uploading an image, creating and deleting volumes)
# one at a time per agent process (one agent per host): a second ensure_image of an image waits
# for the first one's upload instead of finding the volume half-written, and two first calls on a
# fresh host do not both define the pool.
_pool_locks = collections.defaultdict(semaphore.Semaphore)


class HostEventDispatcher(EventDispatcher):
    """Publishes on the `hostagent.events` exchange whatever this container's service name is."""

    def setup(self):
        self.exchange = get_event_exchange(HOST_EVENT_SOURCE, self.container.config)
        self.declare.append(self.exchange)
        Publisher.setup(self)  # skip EventDispatcher.setup: it would pick the per-host exchange


def host_facts(conn):
    """(hypervisor type, host CPUs, host memory MiB) as libvirt reports them."""
    _arch, memory_mib, cpus = conn.getInfo()[:3]
    return conn.getType(), cpus, memory_mib


def host_use(conn):
    """(free memory MiB, 1-minute load average): what is used, beside what labcloud allocated."""
    return conn.getFreeMemory() // (1 << 20), round(os.getloadavg()[0], 2)


def count_domains(conn):
    return len(domains.managed_domains(conn))


class HostAgent:
    name = "hostagent"  # replaced per host by make_service
    host_name = None
    prometheus = ProcessMetrics()  # served on PROMETHEUS_PORT (common/prometheus.py)

    hypervisor = Hypervisor()
    dispatch = HostEventDispatcher()
    config = Config()
    now = Clock()
    domain_events = DomainEvents()
    ssh_forwarder = SshForwarding()  # None when the host has no namespace to forward into
    metadata_server = MetadataServer()  # serves inside HOST_NETNS; workers only invalidate its cache
    ssh_probes = SshReadiness()  # None without HOST_NETNS, like ssh_forwarder
    metrics_http = MetricsHttp()  # XenServer's rrd_updates on METRICS_HTTP_PORT (off without it)
    firewall = HostFirewall()  # security-group filters and floating-IP NAT (netfilter.py)

    @property
    def pool(self):
        """This host's pool, of the kind its configuration names (hostagent/pools)."""
        return pools.from_config(self.config)

    def _on_pool(self, operation, *args):
        """`operation(conn, pool, *args)` in a native thread, on this host's pool (defined and
        started first if needed), one operation at a time per pool."""
        host_pool = self.pool
        with _pool_locks[(self.hypervisor.uri, host_pool.name)]:
            return self.hypervisor.run(lambda conn: operation(conn, host_pool.ensure(conn), *args))

    @rpc
    def get_pool_usage(self):
        """The pool's kind, capacity, allocation and free bytes (storage checks a new volume
        against them)."""
        usage = self._on_pool(lambda _conn, pool: storage_pool.pool_usage(pool))
        return dump(PoolUsageSchema, {"host": self.host_name, "kind": self.pool.kind, **usage})

    @rpc
    def get_host_info(self):
        def read(conn, pool):
            return host_facts(conn), pool.name(), storage_pool.pool_path(pool)
        (hypervisor, cpus, memory_mib), pool_name, path = self._on_pool(read)
        return dump(HostInfoSchema, {"host": self.host_name, "hypervisor": hypervisor,
                                     "uri": self.hypervisor.uri, "vcpus": cpus,
                                     "memory_mib": memory_mib, "pool": pool_name, "pool_path": path,
                                     **self.pool.describe()})

    @rpc
    def ensure_image(self, request):
        request = load(EnsureImageRequest, request)
        upload = not self.hypervisor.is_test_driver  # the test driver cannot take uploads
        volume = self._on_pool(self.pool.ensure_image, request["image_id"], request["capacity_bytes"],
                               request["format"], request["source_path"], upload)
        return dump(VolumeInfoSchema, volume)

    @rpc
    def export_volume(self, request):
        """A pool volume flattened into a standalone qcow2 file (save an instance as an image,
        image_export.py); asked again, the file is written again. The pool lock is held only
        while the volume is looked up, not during the copy."""
        request = load(ExportVolumeRequest, request)
        source, capacity = self._on_pool(lambda _conn, pool: image_export.volume_source(pool, request["name"]))
        exported = tpool.execute(image_export.export, source, capacity, request["destination"],
                                 self.hypervisor.is_test_driver)
        return dump(ExportedVolumeSchema, exported)

    @rpc
    def create_volume(self, request):
        request = load(CreateVolumeRequest, request)
        volume = self._on_pool(self.pool.create_volume, request["name"], request["capacity_bytes"],
                               request["format"], request["backing_path"], request["backing_format"])
        return dump(VolumeInfoSchema, volume)

    @rpc
    def grow_volume(self, request):
        """Grow a volume of a stopped guest (a resize); never shrinks; a repeat changes nothing."""
        request = load(GrowVolumeRequest, request)
        volume = self._on_pool(self.pool.grow_volume, request["name"], request["capacity_bytes"],
                               not self.hypervisor.is_test_driver)
        return dump(VolumeInfoSchema, volume)

    @rpc
    def delete_volume(self, request):
        request = load(DeleteVolumeRequest, request)
        deleted = self._on_pool(lambda _conn, pool: storage_pool.delete_volume(pool, request["name"]))
        return {"deleted": deleted}

    @rpc
    def clone_volume(self, request):
        """A full copy of a pool volume (a data volume's snapshot, or a volume from a snapshot)."""
        request = load(CloneVolumeRequest, request)
        volume = self._on_pool(self.pool.clone_volume, request["name"], request["source"],
                               request["capacity_bytes"])
        return dump(VolumeInfoSchema, volume)

    @rpc
    def attach_disk(self, request):
        """A data volume as a disk of the instance's domain: hot-plugged when it runs (LIVE and
        CONFIG), in its definition when stopped (CONFIG); idempotent (volume_devices.py)."""
        request = load(AttachDiskRequest, request)
        attached = self.hypervisor.run(
            volume_devices.attach, request["instance_id"], request["path"], request["device"],
            request["format"], request["serial"], self.hypervisor.is_test_driver)
        return dump(DiskAttachmentSchema, attached)

    @rpc
    def detach_disk(self, request):
        """The disk goes from the domain (live: waits for the guest to release it) and its
        definition; a domain without it (or gone) answers detached false."""
        request = load(DetachDiskRequest, request)
        detached = self.hypervisor.run(
            volume_devices.detach, request["instance_id"], request["device"], request["path"],
            self.hypervisor.is_test_driver)
        return dump(DiskAttachmentSchema, detached)

    @rpc
    def list_domain_disks(self, request):
        """{device: path} of the domain's definition (reconcile, tests)."""
        instance_id = load(DomainDisksRequest, request)["instance_id"]
        disks = self.hypervisor.run(volume_devices.list_disks, instance_id)
        return dump(DomainDisksSchema, {"instance_id": instance_id, "disks": disks})

    @rpc
    def create_domain(self, request):
        spec = load(DomainSpec, request)
        instance_id = spec["instance_id"]
        existing = self.hypervisor.run(domains.existing_metadata, instance_id)
        recorded_port = _recorded_port(existing)
        # The port is taken before the domain is defined, so its metadata can record it.
        ssh_port = self._forward(instance_id, spec["ip"], recorded_port)
        if existing is None and not self.hypervisor.is_test_driver:
            console.prepare(self.config, instance_id)
        # The guest's interface joins the host's network, or its routed subnet's (made first).
        network = self._join_network(spec["network"])
        xml = build_domain_xml(spec, {**self.config, "HOST_NETWORK": network}, self.hypervisor.uri, ssh_port,
                               self.pool.disk_format)
        # Before the start, so a guest that asks DHCP (cloud images) gets its address at once.
        self._dhcp(dhcp.add_dhcp_host, spec["mac"], spec["ip"], dhcp.entry_name(instance_id), network=network)
        self._neighbour(neighbours.pin, spec["ip"], spec["mac"], network=network)
        self.metadata_server.forget(spec["ip"])
        try:
            state = self.hypervisor.run(domains.create_domain, instance_id, xml)
        except Exception:
            self._undo_undefined(spec)
            raise
        if existing is not None and ssh_port != recorded_port:
            self.hypervisor.run(domains.record_ssh_port, instance_id, ssh_port)
        self._apply_recorded_bandwidth(instance_id)
        self._probe_ssh(state, spec["ip"])
        return self._domain_state(state)

    # ----- routed subnets (routed.py) -----
    @rpc
    def ensure_routed_network(self, request):
        """The routed subnet's network on this host, defined and running (idempotent: by name)."""
        return dump(RoutedNetworkSchema, self._ensure_routed(load(RoutedNetworkSpec, request)))

    @rpc
    def remove_routed_network(self, request):
        """The routed subnet was deleted: its network goes (idempotent: `removed` false when it
        was gone); Conflict naming `network` while a domain's definition names it."""
        name = load(RoutedNetworkNameRequest, request)["name"]
        with _dhcp_lock:
            return {"removed": self.hypervisor.run(routed.remove_network, name)}

    def _ensure_routed(self, spec):
        mode = self.config.get("ROUTED_FORWARD_MODE") or routed.DEFAULT_FORWARD_MODE
        with _dhcp_lock:   # a redefinition must not interleave with a DHCP entry change
            made = self.hypervisor.run(routed.ensure_network, spec, mode)
        self._enable_routing(made["bridge"])
        return made

    def _enable_routing(self, bridge):
        namespace = self.config.get("HOST_NETNS")
        if namespace and bridge and not self.hypervisor.is_test_driver:
            routed.enable_routing(namespace, bridge)

    def _join_network(self, routed_spec):
        """The libvirt network a new guest joins."""
        if routed_spec is None:
            return self._host_network
        return self._ensure_routed(routed_spec)["name"]

    def _network_of(self, instance_id):
        """The network an existing guest joins, running (a routed one is started again after a
        restart of the host, with routing on); HOST_NETWORK when the domain names no routed one."""
        joined = self.hypervisor.run(routed.domain_network, instance_id)
        if not routed.is_routed_network(joined):
            return self._host_network
        bridge = self.hypervisor.run(routed.start_network, joined)
        if bridge is None:
            return self._host_network
        self._enable_routing(bridge)
        return joined

    def _guest_networks(self):
        """Every network of this host that holds guests' DHCP entries (real hosts)."""
        if self.hypervisor.is_test_driver:
            return [self._host_network]
        return [self._host_network] + self.hypervisor.run(routed.routed_networks)

    @property
    def _host_network(self):
        return self.config.get("HOST_NETWORK", "default")

    # ----- security groups and floating IPs (netfilter.py; pushed whole by the network service) -----
    @rpc
    def apply_network_rules(self, request):
        """Replace this host's filters and floating-IP NAT with `request` (idempotent)."""
        request = load(NetworkRulesRequest, request)
        self.firewall.apply(request)
        return dump(NetworkRulesSchema, self.firewall.current())

    @rpc
    def network_rules(self):
        return dump(NetworkRulesSchema, self.firewall.current())

    @rpc
    def set_domain_shares(self, request):
        """The instance's CPU weight and cap, memory and bandwidth, on its definition and, when it
        runs, live (hostagent/shares.py). Absolute values: a repeat changes nothing."""
        request = load(DomainSharesRequest, request)
        tap = self.hypervisor.run(shares.apply, request, self._has_cpu_scheduler)
        if tap is not None:
            self._limit_bandwidth(request["instance_id"], tap, request["bandwidth_in_kib"],
                                  request["bandwidth_out_kib"])
        return self.get_domain_shares({"instance_id": request["instance_id"]})

    @rpc
    def get_domain_shares(self, request):
        instance_id = load(DestroyDomainRequest, request)["instance_id"]
        return dump(DomainSharesSchema, self.hypervisor.run(shares.read, instance_id, self._has_cpu_scheduler))

    @property
    def _has_cpu_scheduler(self):
        return not self.hypervisor.is_test_driver

    def _apply_recorded_bandwidth(self, instance_id):
        """After a start: the tap is new, the limits recorded in the domain's metadata go on it."""
        inbound, outbound, tap = self.hypervisor.run(shares.bandwidth_of, instance_id)
        if tap is not None and (inbound or outbound):
            self._limit_bandwidth(instance_id, tap, inbound, outbound)

    def _limit_bandwidth(self, instance_id, tap, inbound_kib, outbound_kib):
        namespace = self.config.get("HOST_NETNS")
        if namespace and not self.hypervisor.is_test_driver:
            bandwidth.apply(namespace, tap, instance_id, inbound_kib, outbound_kib)

    def _clear_bandwidth(self, instance_id):
        """The guest's tap went with it; its ifb device (outbound limit) must go too."""
        namespace = self.config.get("HOST_NETNS")
        if namespace and not self.hypervisor.is_test_driver:
            bandwidth.clear(namespace, instance_id)

    def _undo_undefined(self, spec):
        """After a failed create: when no domain was defined, destroy_domain (the saga's undo)
        finds no metadata to clean up after, so the DHCP entry, the neighbour entry and the
        forward made for it go now. A defined domain keeps them for destroy_domain (and a
        redelivery makes them again)."""
        instance_id = spec["instance_id"]
        if self.hypervisor.run(domains.existing_metadata, instance_id) is not None:
            return
        network = spec["network"]["name"] if spec["network"] else self._host_network
        self._dhcp(dhcp.remove_dhcp_host, spec["mac"], spec["ip"], network=network)
        self._neighbour(neighbours.unpin, spec["ip"], network=network)
        if self.ssh_forwarder is not None:
            self.ssh_forwarder.stop(instance_id)

    @rpc
    def destroy_domain(self, request):
        """Everything the host holds for the instance goes, found by the instance id even when the
        domain (and the metadata naming its MAC and IP) is gone or was never defined."""
        request = load(DestroyDomainRequest, request)
        instance_id = request["instance_id"]
        self._cancel_probe(instance_id)
        metadata = self.hypervisor.run(domains.existing_metadata, instance_id) or {}
        deleted = self.hypervisor.run(domains.destroy_domain, instance_id)
        forwarded_ip = None
        if self.ssh_forwarder is not None:
            forwarded_ip = self.ssh_forwarder.target_ip_of(instance_id)
            self.ssh_forwarder.stop(instance_id, keep_sessions=request["keep_sessions"])
        forgotten = set()
        # Its entries may be on the host's network or on a routed subnet's (routed.py).
        for network in self._guest_networks():
            removed, left = self._dhcp(dhcp.remove_instance_hosts, instance_id, metadata.get("mac"),
                                       metadata.get("ip"), network=network) or ([], [])
            ips = {metadata.get("ip"), forwarded_ip} | {entry["ip"] for entry in removed}
            ips -= {None, ""} | {entry["ip"] for entry in left}  # an address another guest holds now
            for ip in sorted(ips):
                self._neighbour(neighbours.unpin, ip, network=network)
            forgotten |= ips
        for ip in sorted(forgotten):
            self.metadata_server.forget(ip)
        console.remove(self.config, instance_id)
        self._clear_bandwidth(instance_id)
        return {"deleted": deleted}

    # ----- live migration (hostagent/migration.py) -----
    @rpc
    def prepare_incoming(self, request):
        """Destination, before the guest comes: its DHCP and neighbour entries, its SSH port (a
        forward that reaches the guest once it runs here) and its console log's place; and how the
        source reaches this host. Idempotent: asking again answers the same."""
        request = load(PrepareIncomingRequest, request)
        instance_id = request["instance_id"]
        self._dhcp(dhcp.add_dhcp_host, request["mac"], request["ip"], dhcp.entry_name(instance_id))
        self._neighbour(neighbours.pin, request["ip"], request["mac"])
        self.metadata_server.forget(request["ip"])
        ssh_port = self._forward(instance_id, request["ip"], self._forward_port(instance_id))
        console_path = None
        if not self.hypervisor.is_test_driver:
            os.makedirs(console.console_dir(self.config), exist_ok=True)
            console_path = console.console_log_path(self.config, instance_id)
        return dump(IncomingSchema, {
            "ssh_port": ssh_port, "console_path": console_path,
            "migration_uri": self.config.get("MIGRATION_URI") or self.hypervisor.uri,
            "migration_address": self.config.get("MIGRATION_ADDRESS") or None,
            "disk_format": self.pool.disk_format})

    @rpc
    def migrate_domain(self, request):
        """Source: move the guest to the destination prepare_incoming described (a running one
        live, a stopped one started paused for the move; its root disk copied into the top layer
        storage made there). Blocks until libvirt is done: the guest is then on the destination,
        or (on failure, raised) still here as it was."""
        request = load(MigrateDomainRequest, request)
        self._cancel_probe(request["instance_id"])
        result = self.hypervisor.run(migration.migrate, request["instance_id"], request,
                                     self.hypervisor.is_test_driver)
        return dump(MigrationResultSchema, result)

    @rpc
    def finish_incoming(self, request):
        """Destination, after the move: the guest is here (the test driver defines it from `xml` now,
        and starts it when `start`), with the SSH port recorded in its metadata and, when it runs,
        its recorded bandwidth on its new tap. Returns its state."""
        request = load(FinishIncomingRequest, request)
        instance_id = request["instance_id"]
        state = self.hypervisor.run(migration.adopt, instance_id, request["xml"], request["start"])
        port = self._forward_port(instance_id)
        if port is not None:
            self.hypervisor.run(domains.record_ssh_port, instance_id, port)
        self._apply_recorded_bandwidth(instance_id)
        return self._domain_state(state)

    def _forward_port(self, instance_id):
        return None if self.ssh_forwarder is None else self.ssh_forwarder.port_of(instance_id)

    @rpc
    def stop_domain(self, request):
        request = load(StopDomainRequest, request)
        self._cancel_probe(request["instance_id"])
        state = power.stop(self.hypervisor, request["instance_id"], request["timeout"])
        if state["state"] != "running":
            self._clear_bandwidth(request["instance_id"])
        return self._domain_state(state)

    @rpc
    def start_domain(self, request):
        request = load(StartDomainRequest, request)
        metadata = self._metadata_to_restore(request["instance_id"])
        self._restore_network(request["instance_id"], metadata)
        state = self.hypervisor.run(domains.start_domain, request["instance_id"])
        self._apply_recorded_bandwidth(request["instance_id"])
        self._restore_forward(request["instance_id"], metadata)
        self._probe_ssh(state)
        return self._domain_state(state)

    @rpc
    def reboot_domain(self, request):
        request = load(RebootDomainRequest, request)
        self._cancel_probe(request["instance_id"])  # the SSH it would find is going down
        metadata = self._metadata_to_restore(request["instance_id"])
        self._restore_network(request["instance_id"], metadata)
        state = power.reboot(self.hypervisor, self.domain_events, request["instance_id"],
                             request["timeout"])
        self._apply_recorded_bandwidth(request["instance_id"])  # a hard reboot made a new tap
        self._restore_forward(request["instance_id"], metadata)
        self._probe_ssh(state)
        return self._domain_state(state)

    @rpc
    def get_console(self, request):
        request = load(GetConsoleRequest, request)
        path = console.console_log_path(self.config, request["instance_id"])
        return dump(ConsoleOutputSchema, {"output": console.tail(path, request["max_bytes"])})

    @rpc
    def list_domains(self):
        listed = self.hypervisor.run(domains.list_domains)
        return dump(DomainStateSchema, [self._with_port(state) for state in listed], many=True)

    @rpc
    def get_inventory(self):
        """Everything this host holds for labcloud, as of at least `seq`, taken before any of it is
        read: a domain created or changed during the read reports a newer seq (its create answer or
        lifecycle event) and so wins over this listing, which may have missed it or seen it earlier."""
        seq = sequence.next_seq()
        network = None if self.hypervisor.is_test_driver else self.config.get("HOST_NETWORK", "default")
        listed, volumes, dhcp_entries = self._on_pool(_read_inventory, network)
        forwards = [] if self.ssh_forwarder is None else self.ssh_forwarder.forwards()
        console_logs = console.present(self.config)
        return dump(HostInventorySchema, {
            "host": self.host_name, "domains": [self._with_port(state) for state in listed],
            "volumes": volumes, "dhcp_entries": dhcp_entries, "forwards": forwards,
            "console_logs": console_logs, "seq": seq})

    @domain_lifecycle_handler
    def domain_lifecycle(self, event):
        self.dispatch("domain_lifecycle", dump(DomainLifecycleSchema, {"host": self.host_name, **event}))

    @ssh_ready_handler
    def domain_ssh_ready(self, ready):
        self.dispatch("domain_ssh_ready", dump(DomainSshReadySchema, {"host": self.host_name, **ready}))

    def _probe_ssh(self, state, ip=None):
        """A start left the domain running: probe its SSH from inside HOST_NETNS (replacing an
        earlier probe of it); `domain_ssh_ready` follows when it answers."""
        if self.ssh_probes is None or state["state"] != "running":
            return
        instance_id = state["instance_id"]
        ip = ip or (self.ssh_forwarder and self.ssh_forwarder.target_ip_of(instance_id))
        if ip:
            self.ssh_probes.start(instance_id, ip)

    def _cancel_probe(self, instance_id):
        if self.ssh_probes is not None:
            self.ssh_probes.cancel(instance_id)

    def _dhcp(self, operation, *args, network=None):
        """A DHCP host entry change on `network` (default HOST_NETWORK) and its result; real hosts
        only (the test driver's network serves no guests: None)."""
        if self.hypervisor.is_test_driver:
            return None
        network = network or self._host_network
        with _dhcp_lock:
            return self.hypervisor.run(lambda conn: operation(conn, *args, network=network))

    def _neighbour(self, operation, *args, network=None):
        """A static neighbour entry on the bridge of `network` (default HOST_NETWORK), inside
        HOST_NETNS (real hosts)."""
        namespace = self.config.get("HOST_NETNS")
        if self.hypervisor.is_test_driver or not namespace:
            return
        network = network or self._host_network
        bridge = self.hypervisor.run(lambda conn: conn.networkLookupByName(network).bridgeName())
        operation(namespace, bridge, *args)

    def _forward(self, instance_id, ip, port=None):
        """The SSH forward's port (None: this host forwards nothing)."""
        if self.ssh_forwarder is None:
            return None
        try:
            return self.ssh_forwarder.ensure(instance_id, ip, port)
        except OSError as exc:
            if port is None:
                raise HostOperationFailed(f"no SSH port for {instance_id}: {exc}") from None
        log.warning("recorded SSH port %s of %s is taken: picking another", port, instance_id)
        try:
            return self.ssh_forwarder.ensure(instance_id, ip)
        except OSError as exc:
            raise HostOperationFailed(f"no SSH port for {instance_id}: {exc}") from None

    def _metadata_to_restore(self, instance_id):
        """start/reboot: the domain's metadata, read once, when something may have to be put back
        from it (network entries on real hosts, a forward this agent does not hold); else None."""
        missing_forward = self.ssh_forwarder is not None and self.ssh_forwarder.port_of(instance_id) is None
        if self.hypervisor.is_test_driver and not missing_forward:
            return None
        return self.hypervisor.run(domains.existing_metadata, instance_id)

    def _restore_network(self, instance_id, metadata):
        """The guest's DHCP entry and static neighbour entry come back (after a restart of the host
        the network and its namespace are new). Both are idempotent."""
        if self.hypervisor.is_test_driver:
            return
        if metadata and metadata.get("mac") and metadata.get("ip"):
            network = self._network_of(instance_id)
            self._dhcp(dhcp.add_dhcp_host, metadata["mac"], metadata["ip"], dhcp.entry_name(instance_id),
                       network=network)
            self._neighbour(neighbours.pin, metadata["ip"], metadata["mac"], network=network)

    def _restore_forward(self, instance_id, metadata):
        """The forward comes back (after an agent restart) on its recorded port."""
        if self.ssh_forwarder is None or self.ssh_forwarder.port_of(instance_id) is not None:
            return
        if metadata and metadata.get("ip"):
            port = self._forward(instance_id, metadata["ip"], _recorded_port(metadata))
            if port != _recorded_port(metadata):
                self.hypervisor.run(domains.record_ssh_port, instance_id, port)

    def _with_port(self, state):
        port = None if self.ssh_forwarder is None else self.ssh_forwarder.port_of(state["instance_id"])
        return {**state, "ssh_port": port}

    def _domain_state(self, state):
        return dump(DomainStateSchema, self._with_port(state))

    @config_timer("HEARTBEAT_INTERVAL", 5, eager=True)
    def host_heartbeat(self):
        hypervisor, cpus, memory_mib = self.hypervisor.run(host_facts)
        host_pool = self.pool
        memory_free_mib, load_1m = self.hypervisor.run(host_use)
        self.dispatch("host_heartbeat", dump(HeartbeatSchema, {
            "memory_free_mib": memory_free_mib, "load_1m": load_1m,
            "host": self.host_name, "hypervisor": hypervisor, "vcpus": cpus, "memory_mib": memory_mib,
            "disk_gib": self.hypervisor.run(storage_pool.capacity_gib, host_pool.name),
            "pool_kind": host_pool.kind,
            "domains": self.hypervisor.run(count_domains),
            "at": self.now(), "agent_started": sequence.PROCESS_STARTED}))

    @config_timer("STATS_INTERVAL", 5)
    def domain_stats(self):
        samples = self.hypervisor.run(stats.collect)
        host_sample = self.hypervisor.run(host_stats.collect_host)
        at = self.now()
        self.dispatch("domain_stats", dump(DomainStatsSchema, {
            "host": self.host_name, "at": at, "domains": samples, "host_sample": host_sample}))
        # The agent's own copy, for its HTTP port (off unless METRICS_HTTP_PORT is set).
        self.metrics_http.record(at.replace(tzinfo=dt.timezone.utc).timestamp(), samples,
                                 self.host_name, host_sample)


def _read_inventory(conn, pool, network):
    """(labcloud's domains, every volume of the pool, labcloud's DHCP entries on `network` and on
    the host's routed networks)."""
    networks = [network] + routed.routed_networks(conn) if network else []
    entries = [entry for name in networks for entry in dhcp.instance_entries(conn, name)]
    return domains.list_domains(conn), storage_pool.list_volumes(pool), entries


def _recorded_port(metadata):
    return int(metadata["ssh_port"]) if metadata and metadata.get("ssh_port") else None


def make_service(host_name):
    """The HostAgent class for one host: RPC queue `hostagent_<host_name>`."""
    service_name = host_service_name(host_name)
    return type(f"HostAgent_{host_name.replace('-', '_')}", (HostAgent,),
                {"name": service_name, "host_name": host_name})
