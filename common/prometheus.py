"""Operational metrics of a Nameko service process (every service and host agent declares
`prometheus = ProcessMetrics()`): entrypoint calls, their latency, errors and the workers busy,
exposed in Prometheus' text format on PROMETHEUS_PORT (0 or empty: not served, the default; the
counting costs nothing worth switching off). PROMETHEUS_ADDRESS: 127.0.0.1 unless set.

Each container has its own registry, so several services in one process (tests) do not collide.
Another dependency of the same service may add to what is served by having a
`prometheus_collector()` method (the metrics service: its VMs' and hosts' samples).
"""
import time

from nameko.extensions import DependencyProvider
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from common.wsgi_listener import WsgiListener

DEFAULT_ADDRESS = "127.0.0.1"


def _kind(entrypoint):
    """rpc, event, timer...: the entrypoint's class, as people name it."""
    name = type(entrypoint).__name__.lower()
    for kind in ("rpc", "event", "timer", "consumer"):
        if kind in name:
            return kind
    return name


class ProcessMetrics(DependencyProvider):

    def setup(self):
        config = self.container.config
        self.port = int(config.get("PROMETHEUS_PORT") or 0)
        self.address = config.get("PROMETHEUS_ADDRESS") or DEFAULT_ADDRESS
        self.registry = CollectorRegistry()
        labels = ("service", "kind", "method")
        self.calls = Counter("labcloud_service_calls", "Entrypoint calls handled (RPC, event, timer)",
                             labels, registry=self.registry)
        self.errors = Counter("labcloud_service_errors", "Entrypoint calls that raised",
                              labels + ("error",), registry=self.registry)
        self.latency = Histogram("labcloud_service_call_duration_seconds", "Time a worker took",
                                 labels, registry=self.registry)
        self.busy = Gauge("labcloud_service_workers_busy", "Workers running now", ("service",),
                          registry=self.registry)
        self.max_workers = Gauge("labcloud_service_max_workers", "Worker pool size", ("service",),
                                 registry=self.registry)
        self.max_workers.labels(self.container.service_name).set(self.container.max_workers)
        self._started = {}
        self.listener = WsgiListener()

    def start(self):
        for dependency in self.container.dependencies:
            make = getattr(dependency, "prometheus_collector", None)
            if make is not None:
                self.registry.register(make())
        if self.port:
            self.listener.serve(self.container, self.address, self.port, make_wsgi_app(self.registry),
                                "prometheus metrics")

    def stop(self):
        self.listener.stop()

    kill = stop

    def _labels(self, worker_ctx):
        return (self.container.service_name, _kind(worker_ctx.entrypoint),
                worker_ctx.entrypoint.method_name)

    def worker_setup(self, worker_ctx):
        self._started[worker_ctx] = time.perf_counter()
        self.busy.labels(self.container.service_name).inc()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        labels = self._labels(worker_ctx)
        self.calls.labels(*labels).inc()
        started = self._started.pop(worker_ctx, None)
        if started is not None:
            self.latency.labels(*labels).observe(time.perf_counter() - started)
        if exc_info is not None:
            self.errors.labels(*labels, exc_info[0].__name__).inc()

    def worker_teardown(self, worker_ctx):
        self._started.pop(worker_ctx, None)
        self.busy.labels(self.container.service_name).dec()
