"""Prometheus counters of the metrics service (process-wide; whoever runs the process decides
whether to expose them, e.g. with prometheus_client.start_http_server)."""
from prometheus_client import Counter

samples_stored = Counter(
    "labcloud_metrics_samples_stored_total", "Domain samples written to an rrd file")
samples_rejected = Counter(
    "labcloud_metrics_samples_rejected_total",
    "Domain samples not written", ["reason"])  # invalid | stale (redelivered/old) | deleted
mail_events = Counter(
    "labcloud_mail_events_total", "Events that ask for a mail", ["event", "outcome"])  # queued | duplicate | disabled
mail_sends = Counter(
    "labcloud_mail_sends_total", "Outbox rows handled by the sender", ["outcome"])  # sent | retry | failed | dropped
alarm_changes = Counter(
    "labcloud_alarm_state_changes_total", "Alarm state changes recorded", ["state"])  # OK | ALARM | INSUFFICIENT_DATA
