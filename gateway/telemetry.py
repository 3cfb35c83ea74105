"""Prometheus request metrics. Each app has its own CollectorRegistry so several apps (tests)
can live in one process without duplicate-metric errors."""
import time

from flask import g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

UNMATCHED = "unmatched"  # all 404s share one label, or arbitrary URLs would explode cardinality


class RequestMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = CollectorRegistry()
        labels = ("method", "endpoint", "status")
        self.requests = Counter("labcloud_gateway_requests", "HTTP requests served",
                                labels, registry=self.registry)
        self.latency = Histogram("labcloud_gateway_request_duration_seconds",
                                 "Time to answer an HTTP request", labels, registry=self.registry)

    def init_app(self, app):
        app.before_request(self._start)
        app.after_request(self._record)

    @staticmethod
    def _start():
        g.request_started = time.perf_counter()

    def _record(self, response):
        started = g.pop("request_started", None)
        endpoint = request.url_rule.rule if request.url_rule is not None else UNMATCHED
        labels = (request.method, endpoint, str(response.status_code))
        self.requests.labels(*labels).inc()
        if started is not None:
            self.latency.labels(*labels).observe(time.perf_counter() - started)
        return response

    def render(self):
        return generate_latest(self.registry)
