"""The rrdtool files as a nameko dependency, so tests point the service at a temp directory
through config (METRICS_DIR, STEP) and nothing else touches the filesystem."""
from nameko.extensions import DependencyProvider

from services.metrics.rrd_store import MetricsStore

DEFAULT_METRICS_DIR = "var/metrics"
DEFAULT_STEP = 10


class RrdStore(DependencyProvider):
    """Injects one MetricsStore shared by all workers of the container: its per-file locks only
    work if every greenthread sees the same ones."""

    def setup(self):
        config = self.container.config
        self.store = MetricsStore(config.get("METRICS_DIR", DEFAULT_METRICS_DIR),
                                  int(config.get("STEP", DEFAULT_STEP)))

    def get_dependency(self, worker_ctx):
        return self.store
