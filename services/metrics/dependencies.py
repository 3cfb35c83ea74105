"""The rrdtool files as a nameko dependency, so tests point the service at a temp directory
through config (METRICS_DIR, STEP, METRICS_RETENTION) and nothing else touches the filesystem.
Every call runs in a native thread (eventlet.tpool): rrdtool blocks, and a graph or a year of
rrd_updates takes long enough to stall every other worker of the process."""
from eventlet import tpool
from nameko.extensions import DependencyProvider

from services.metrics import rrd_read
from services.metrics.rrd_store import DEFAULT_RETENTION, MetricsStore

DEFAULT_METRICS_DIR = "var/metrics"
DEFAULT_STEP = 5


class Metrics:
    """The store and its readers, off the hub."""

    def __init__(self, store):
        self.raw = store

    def store(self, instance_id, at, sample):
        return tpool.execute(self.raw.store, instance_id, at, sample)

    def store_host(self, host, at, sample):
        return tpool.execute(self.raw.store_host, host, at, sample)

    def delete(self, instance_id):
        return tpool.execute(self.raw.delete, instance_id)

    def purge(self):
        return tpool.execute(self.raw.purge)

    def series(self, instance_id, seconds):
        return tpool.execute(rrd_read.series, self.raw, instance_id, seconds)

    def rrd_updates(self, **query):
        return tpool.execute(lambda: rrd_read.rrd_updates(self.raw, **query))

    def vm_rrd(self, instance_id):
        return tpool.execute(rrd_read.vm_rrd, self.raw, instance_id)


class RrdStore(DependencyProvider):
    """Injects one Metrics shared by all workers of the container: the store's per-file locks and
    caches only work if every worker sees the same ones."""

    def setup(self):
        config = self.container.config
        self.metrics = Metrics(MetricsStore(
            config.get("METRICS_DIR", DEFAULT_METRICS_DIR), int(config.get("STEP", DEFAULT_STEP)),
            retention=int(config.get("METRICS_RETENTION", DEFAULT_RETENTION))))

    def get_dependency(self, worker_ctx):
        return self.metrics
