"""Metrics service: stores the host agents' per-domain and per-host samples in rrdtool files and
serves them (reading in common/rrd/); judges alarms on them (entry points in alarm_entrypoints.py,
a mixin); runs scheduled instance actions (schedule_entrypoints.py, a mixin); and, as the
notifications service, labcloud's one sender of mail, whose entry points are in
mail_entrypoints.py (a mixin). Entry points only."""
import logging
from collections import Counter

from nameko.dependency_providers import Config
from nameko.events import event_handler
from nameko.rpc import RpcProxy, rpc

from common.clock import Clock
from common.db import Database, retry_transient_workers
from common.errors import InvalidInput
from common.hostrpc import HOST_EVENT_SOURCE
from common.prometheus import ProcessMetrics
from common.rrd.store import STORED
from common.schemas import dump, load
from common.timers import config_timer
from services.metrics import access, alarms, counters, schedules
from services.metrics.domain_sample import load_domain_sample
from services.metrics.dependencies import MailPolicy, RrdStore, SampleAlarmIndex, SenderName, SmtpMailer
from services.metrics import alarm_entrypoints, mail_entrypoints, schedule_entrypoints
from services.metrics.schemas import (
    DomainStatsEvent, GraphAvailabilityRequest, HostGraphRequest, HostSampleEvent, InstanceDeletedEvent,
    InstanceGraphRequest, InstanceMetricsSchema, MetricsQuery, RrdUpdatesQuery, RrdUpdatesRequest, VmRrdQuery,
    VmRrdRequest)

log = logging.getLogger(__name__)
# Made once: a schema instance copies its fields when made, every host every step otherwise.
_DOMAIN_STATS = DomainStatsEvent()


@retry_transient_workers
class MetricsService(mail_entrypoints.MailEntrypoints, alarm_entrypoints.AlarmEntrypoints,
                     schedule_entrypoints.ScheduleEntrypoints):
    name = "metrics"
    prometheus = ProcessMetrics()  # served on PROMETHEUS_PORT (common/prometheus.py)

    store = RrdStore()
    db = Database()
    clock = Clock()
    mailer = SmtpMailer()
    mail_policy = MailPolicy()
    sender_name = SenderName()
    alarm_index = SampleAlarmIndex()  # which alarms a sample batch may have to judge
    accounts = RpcProxy("accounts")  # the address of an instance's owner
    instances = RpcProxy("instances")
    config = Config()

    @event_handler(HOST_EVENT_SOURCE, "domain_stats")
    def handle_domain_stats(self, payload):
        # Nothing here raises: a bad event is logged and dropped (redelivering it cannot help),
        # and one bad domain must not cost the other domains of the batch their sample.
        try:
            batch = load(_DOMAIN_STATS, payload)
        except InvalidInput as exc:
            log.warning("dropping domain_stats event: %s %s", exc, exc.fields)
            counters.samples_rejected.labels("invalid").inc()
            return
        samples = []
        for entry in batch["domains"]:
            try:
                samples.append(load_domain_sample(entry))
            except InvalidInput as exc:
                log.warning("skipping a domain in domain_stats from %s: %s %s",
                            batch["host"], exc, exc.fields)
                counters.samples_rejected.labels("invalid").inc()
        self._count_all(self.store.store_batch(batch["at"], samples, batch["host"]))
        if batch["host_sample"] is not None:
            self._store_host(batch)
        # alarm_entrypoints.py
        self._evaluate_batch(batch["at"], [sample["instance_id"] for sample in samples], batch["host"])

    def _store_host(self, batch):
        try:
            sample = load(HostSampleEvent, batch["host_sample"])
            self._count(self.store.store_host(batch["host"], batch["at"], sample))
        except InvalidInput as exc:
            log.warning("skipping the host sample of %s: %s %s", batch["host"], exc, exc.fields)
            counters.samples_rejected.labels("invalid").inc()

    @staticmethod
    def _count(outcome):
        if outcome == STORED:
            counters.samples_stored.inc()
        else:
            counters.samples_rejected.labels(outcome).inc()

    @staticmethod
    def _count_all(outcomes):
        """A batch's outcomes, each counter moved once (a counter's lock per sample adds up)."""
        for outcome, number in Counter(outcomes).items():
            if outcome == STORED:
                counters.samples_stored.inc(number)
            else:
                counters.samples_rejected.labels(outcome).inc(number)

    @event_handler("instances", "instance_deleted", requeue_on_error=True)
    def handle_instance_deleted(self, payload):
        """Its metrics kept for the retention time, its schedules and alarms deleted; each step
        finds nothing to do on a redelivery, and a failure (the database) requeues the event."""
        try:
            instance_id = load(InstanceDeletedEvent, payload)["id"]
        except InvalidInput as exc:
            log.warning("ignoring instance_deleted event: %s %s", exc, exc.fields)
            return
        if self.store.delete(instance_id):
            log.info("metrics of deleted instance %s kept for the retention time", instance_id)
        if schedules.delete_of_instance(self.db, instance_id):
            log.info("deleted the schedules of deleted instance %s", instance_id)
        if alarms.delete_of_instance(self.db, instance_id):
            self.alarm_index.invalidate()
            log.info("deleted the alarms of deleted instance %s", instance_id)

    @config_timer("PURGE_INTERVAL", 3600)
    def purge_deleted(self):
        for instance_id in self.store.purge():
            log.info("removed metrics of instance %s, deleted over the retention time ago",
                     instance_id)

    @rpc
    def get_instance_metrics(self, instance_id, seconds=3600):
        query = load(MetricsQuery, {"instance_id": instance_id, "seconds": seconds})
        return dump(InstanceMetricsSchema, self.store.series(query["instance_id"], query["seconds"]))

    @rpc
    def rrd_updates(self, start, instance_id=None, interval=None, cf=None, host=False, json=False):
        query = load(RrdUpdatesQuery, {"start": start, "instance_id": instance_id,
                                       "interval": interval, "cf": cf, "host": host, "json": json})
        return self.store.rrd_updates(
            start=query["start"], vm_uuid=query["instance_id"], interval=query["interval"],
            cf=query["cf"], host=query["host"], as_json=query["json"])

    @rpc
    def vm_rrd(self, instance_id):
        return self.store.vm_rrd(load(VmRrdQuery, {"instance_id": instance_id})["instance_id"])

    # -- user-facing (the gateway's /rrd_updates, /vm_rrd): read-only, so redelivery is harmless

    @rpc
    def get_rrd_updates(self, actor, request):
        query = load(RrdUpdatesRequest, request)
        if query["host"]:
            access.check_hosts(actor)
        only = access.readable_instances(actor, self.instances, query["vm_uuid"])
        return self.store.rrd_updates(
            start=query["start"], vm_uuid=query["vm_uuid"], interval=query["interval"],
            cf=query["cf"], host=query["host"], as_json=query["json"], only=only)

    @rpc
    def get_vm_rrd(self, actor, request):
        instance_id = load(VmRrdRequest, request)["uuid"]
        access.readable_instances(actor, self.instances, instance_id)
        return self.store.vm_rrd(instance_id)

    @rpc
    def get_instance_graph(self, actor, request):
        query = load(InstanceGraphRequest, request)
        access.readable_instances(actor, self.instances, query["instance_id"])
        return {"png_base64": self.store.instance_graph(query["instance_id"], query["metric"],
                                                        query["period"])}

    @rpc
    def get_host_graph(self, actor, request):
        query = load(HostGraphRequest, request)
        access.check_hosts(actor)
        return {"png_base64": self.store.host_graph(query["host"], query["metric"], query["period"])}

    @rpc
    def get_graph_availability(self, actor, request):
        query = load(GraphAvailabilityRequest, request)
        if query["host"] is not None:
            access.check_hosts(actor)
            return {"available": self.store.graphs.host_has_samples(query["host"])}
        access.readable_instances(actor, self.instances, query["instance_id"])
        return {"available": self.store.graphs.instance_has_samples(query["instance_id"])}
