"""The rrdtool files as a nameko dependency, so tests point the service at a temp directory
through config (METRICS_DIR, STEP, METRICS_RETENTION) and nothing else touches the filesystem.
Every call runs in a native thread (common/rrd/threaded.py)."""
from nameko.extensions import DependencyProvider

from common.rrd.store import DEFAULT_RETENTION, MetricsStore
from common.rrd.threaded import Metrics

DEFAULT_METRICS_DIR = "var/metrics"
DEFAULT_STEP = 5


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
