"""The metrics service's side effects as nameko dependencies: the rrdtool files (METRICS_DIR, STEP,
METRICS_RETENTION, GRAPH_CACHE_DIR, GRAPH_CACHE_SECONDS, RRDCACHED_ADDRESS; every call in a native thread,
common/rrd/threaded.py), the SMTP server (SMTP_*, MAIL_FROM), the sender's retry policy (MAIL_*)
this container's name as an outbox claim holder, and the index of alarms a sample batch looks up. Tests point them anywhere through config alone."""
import base64
import os
import socket
import uuid

from eventlet import tpool
from nameko.extensions import DependencyProvider

from common.rrd.store import DEFAULT_RETENTION, MetricsStore
from common.rrd.threaded import Metrics
from services.metrics.alarm_index import AlarmIndex
from services.metrics.exposition import RrdCollector
from services.metrics.graphs import DEFAULT_CACHE_SECONDS, Graphs
from services.metrics.mailer import Mailer, SmtpSettings
from services.metrics.sender import SendPolicy

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
                             retention=int(config.get("METRICS_RETENTION", DEFAULT_RETENTION)),
                             daemon=config.get("RRDCACHED_ADDRESS") or None)
        graphs = Graphs(store, config.get("GRAPH_CACHE_DIR") or os.path.join(directory, "graphs"),
                        float(config.get("GRAPH_CACHE_SECONDS", DEFAULT_CACHE_SECONDS)))
        self.metrics = ServiceMetrics(store, graphs)

    def stop(self):
        if self.metrics.raw.cache is not None:
            self.metrics.raw.cache.close()

    def kill(self):
        self.stop()

    def prometheus_collector(self):
        """Served by common.prometheus.ProcessMetrics with the process's own metrics."""
        return RrdCollector(self.metrics.raw)

    def get_dependency(self, worker_ctx):
        return self.metrics


class SampleAlarmIndex(DependencyProvider):
    """Injects the container's one AlarmIndex (alarm_index.py), shared by its workers; reloaded at
    most every ALARM_EVALUATE_INTERVAL seconds, the bound the evaluation timer already sets on how
    late an alarm is judged."""

    def setup(self):
        self.index = AlarmIndex(float(self.container.config.get("ALARM_EVALUATE_INTERVAL", 5)))

    def get_dependency(self, worker_ctx):
        return self.index


class SmtpMailer(DependencyProvider):
    """Injects a Mailer for the configured SMTP server (read once per container)."""

    def setup(self):
        self.mailer = Mailer(SmtpSettings.from_config(self.container.config))

    def get_dependency(self, worker_ctx):
        return self.mailer


class MailPolicy(DependencyProvider):
    """Injects the sender's SendPolicy (retry backoff, attempts, claim lease)."""

    def setup(self):
        self.policy = SendPolicy.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.policy


class SenderName(DependencyProvider):
    """This container's name as the holder of outbox claims (replicas, even several containers in
    one test process, each have their own)."""

    def setup(self):
        self.name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"[:64]

    def get_dependency(self, worker_ctx):
        return self.name
