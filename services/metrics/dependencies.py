"""The rrdtool files as a nameko dependency, so tests point the service at a temp directory
through config (METRICS_DIR, STEP, METRICS_RETENTION, GRAPH_CACHE_DIR, GRAPH_CACHE_SECONDS) and
nothing else touches the filesystem.
Every call runs in a native thread (common/rrd/threaded.py)."""
import base64
import os

from eventlet import tpool
from nameko.extensions import DependencyProvider

from common.rrd.store import DEFAULT_RETENTION, MetricsStore
from common.rrd.threaded import Metrics
from services.metrics.exposition import RrdCollector
from services.metrics.graphs import DEFAULT_CACHE_SECONDS, Graphs

DEFAULT_METRICS_DIR = "var/metrics"
DEFAULT_STEP = 5


class ServiceMetrics(Metrics):
    """The shared store plus the service's graphs; PNGs as base64 (RPC carries JSON)."""

    def __init__(self, store, graphs):
        super().__init__(store)
        self.graphs = graphs

    def instance_graph(self, instance_id, metric, period):
        png = tpool.execute(self.graphs.instance_graph, instance_id, metric, period)
        return base64.b64encode(png).decode("ascii")

    def host_graph(self, host, metric, period):
        png = tpool.execute(self.graphs.host_graph, host, metric, period)
        return base64.b64encode(png).decode("ascii")


class RrdStore(DependencyProvider):
    """Injects one Metrics shared by all workers of the container: the store's per-file locks and
    caches only work if every worker sees the same ones."""

    def setup(self):
        config = self.container.config
        directory = config.get("METRICS_DIR", DEFAULT_METRICS_DIR)
        store = MetricsStore(directory, int(config.get("STEP", DEFAULT_STEP)),
                             retention=int(config.get("METRICS_RETENTION", DEFAULT_RETENTION)))
        graphs = Graphs(store, config.get("GRAPH_CACHE_DIR") or os.path.join(directory, "graphs"),
                        float(config.get("GRAPH_CACHE_SECONDS", DEFAULT_CACHE_SECONDS)))
        self.metrics = ServiceMetrics(store, graphs)

    def prometheus_collector(self):
        """Served by common.prometheus.ProcessMetrics with the process's own metrics."""
        return RrdCollector(self.metrics.raw)

    def get_dependency(self, worker_ctx):
        return self.metrics
