"""Host agent entry points: thin wrappers that load the request, run the operation on the
hypervisor (off the eventlet hub, see hypervisor.py) and dump the answer.

One class per host: `make_service("h1")` serves RPC on `hostagent_h1`; every host publishes its
events under the one source `hostagent` (HostEventDispatcher), so listeners need no host list.
"""
import os

from nameko.dependency_providers import Config
from nameko.events import EventDispatcher
from nameko.messaging import Publisher
from nameko.rpc import rpc
from nameko.standalone.events import get_event_exchange

from common.clock import Clock
from common.hostrpc import HOST_EVENT_SOURCE, host_service_name
from common.schemas import dump, load
from common.timers import config_timer
from hostagent import domains, stats, storage_pool
from hostagent.domain_xml import build_domain_xml
from hostagent.hypervisor import Hypervisor
from hostagent.schemas import (
    CreateVolumeRequest, DeleteVolumeRequest, DestroyDomainRequest, DomainSpec, DomainStateSchema,
    DomainStatsSchema, EnsureImageRequest, HeartbeatSchema, HostInfoSchema, VolumeInfoSchema)

DEFAULT_POOL_NAME = "labcloud"
DEFAULT_POOL_PATH = "var/pools/host1"


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


def count_domains(conn):
    return len(domains.managed_domains(conn))


class HostAgent:
    name = "hostagent"  # replaced per host by make_service
    host_name = None

    hypervisor = Hypervisor()
    dispatch = HostEventDispatcher()
    config = Config()
    now = Clock()

    def _pool(self, conn):
        return storage_pool.ensure_pool(conn, self.config.get("POOL_NAME", DEFAULT_POOL_NAME),
                                        self.config.get("POOL_PATH", DEFAULT_POOL_PATH))

    @rpc
    def get_host_info(self):
        def read(conn):
            pool = self._pool(conn)
            return host_facts(conn), pool.name(), storage_pool.pool_path(pool)
        (hypervisor, cpus, memory_mib), pool_name, path = self.hypervisor.run(read)
        return dump(HostInfoSchema, {"host": self.host_name, "hypervisor": hypervisor,
                                     "uri": self.hypervisor.uri, "vcpus": cpus,
                                     "memory_mib": memory_mib, "pool": pool_name, "pool_path": path})

    @rpc
    def ensure_image(self, request):
        request = load(EnsureImageRequest, request)
        upload = not self.hypervisor.is_test_driver  # the test driver cannot take uploads
        volume = self.hypervisor.run(
            lambda conn: storage_pool.ensure_image(
                conn, self._pool(conn), request["image_id"], request["capacity_bytes"],
                request["format"], request["source_path"], upload))
        return dump(VolumeInfoSchema, volume)

    @rpc
    def create_volume(self, request):
        request = load(CreateVolumeRequest, request)
        volume = self.hypervisor.run(
            lambda conn: storage_pool.create_volume(
                conn, self._pool(conn), request["name"], request["capacity_bytes"],
                request["format"], request["backing_path"]))
        return dump(VolumeInfoSchema, volume)

    @rpc
    def delete_volume(self, request):
        request = load(DeleteVolumeRequest, request)
        deleted = self.hypervisor.run(
            lambda conn: storage_pool.delete_volume(self._pool(conn), request["name"]))
        return {"deleted": deleted}

    @rpc
    def create_domain(self, request):
        spec = load(DomainSpec, request)
        if not self.hypervisor.is_test_driver:
            os.makedirs(self.config.get("CONSOLE_DIR") or "var/console", exist_ok=True)
        xml = build_domain_xml(spec, self.config, self.hypervisor.uri)
        state = self.hypervisor.run(domains.create_domain, spec["instance_id"], xml)
        return dump(DomainStateSchema, state)

    @rpc
    def destroy_domain(self, request):
        request = load(DestroyDomainRequest, request)
        return {"deleted": self.hypervisor.run(domains.destroy_domain, request["instance_id"])}

    @rpc
    def list_domains(self):
        return dump(DomainStateSchema, self.hypervisor.run(domains.list_domains), many=True)

    @config_timer("HEARTBEAT_INTERVAL", 5, eager=True)
    def host_heartbeat(self):
        hypervisor, cpus, memory_mib = self.hypervisor.run(host_facts)
        self.dispatch("host_heartbeat", dump(HeartbeatSchema, {
            "host": self.host_name, "hypervisor": hypervisor, "vcpus": cpus,
            "memory_mib": memory_mib, "domains": self.hypervisor.run(count_domains),
            "at": self.now()}))

    @config_timer("STATS_INTERVAL", 10)
    def domain_stats(self):
        samples = self.hypervisor.run(stats.collect)
        self.dispatch("domain_stats", dump(DomainStatsSchema, {
            "host": self.host_name, "at": self.now(), "domains": samples}))


def make_service(host_name):
    """The HostAgent class for one host: RPC queue `hostagent_<host_name>`."""
    service_name = host_service_name(host_name)
    return type(f"HostAgent_{host_name.replace('-', '_')}", (HostAgent,),
                {"name": service_name, "host_name": host_name})
