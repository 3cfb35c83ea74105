"""The metrics service's side effects as nameko dependencies: the rrdtool files (METRICS_DIR,
STEP), the SMTP server (SMTP_*, MAIL_FROM), the sender's retry policy (MAIL_*) and this
container's name as an outbox claim holder. Tests point them anywhere through config alone."""
import os
import socket
import uuid

from nameko.extensions import DependencyProvider

from services.metrics.mailer import Mailer, SmtpSettings
from services.metrics.rrd_store import MetricsStore
from services.metrics.sender import SendPolicy

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
