"""The metrics service's ingest and its alarms, measured on one service container (one process,
`--max-workers` concurrent handlers, nameko's default 10) over a private RabbitMQ node:

1. raw: `rrdtool update` calls per second on the same files (same layout, one call per VM sample,
   strings formatted beforehand), in this process, in the same run: the machine's ceiling;
   the service writes through a private rrdcached as `labcloud run` does (`--store direct`: each
   sample an `rrdtool update` by the service itself). With rrdcached the files are written by the
   daemon later: after the measured rounds it is told to write everything (FLUSHALL), and the
   rate counting that time too, and the daemon's CPU time per sample, are reported with it;
2. ingest: host agents' `domain_stats` events (`--vms-per-host` VMs each, the agent's schema) for
   `--vms` VMs, one sample per VM per round, queued in RabbitMQ while the service is stopped; the
   sustained rate is samples handled (the service's counters) from the first batch done to the
   last (the container's start is reported apart, and the rate with it); `--alarms` instance
   alarms sit on the VMs, so every batch looks its alarms up and judges them when their period
   (60 s of sample time) ends. Before the measured rounds, SETTLE_ROUNDS take the new alarms
   through their first judgement (a state change and its mail, once per alarm); sample times run
   from the clock's next minute on, ahead of the service's evaluation timer as an agent's are, so
   the batches judge. CPU time per sample (this process, all threads) is reported with the
   rates: on a shared machine it moves less than they do;
3. alarm latency: a host alarm (loadavg > 5, period = one step, 1 of 1) mailing an address through
   labcloud's aiosmtpd sink; the host sends a sample every step in real time, at unaligned times
   as an agent does; a breaching one, then normal ones; the time from sending the breaching sample
   to the mail's file appearing in the sink's Maildir (accepted), `--breaches` times.

    .venv/bin/python bench/metrics_ingest.py [--vms 200] [--rounds 30] [--alarms 50] [--breaches 3]
        [--repeat 3] [--store rrdcached|direct]
"""
import eventlet

eventlet.monkey_patch()  # nameko's containers and standalone dispatchers are green

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402

warnings.filterwarnings("ignore", message="(?s).*Eventlet is deprecated")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import rrdtool  # noqa: E402
from eventlet import tpool  # noqa: E402
from nameko.containers import ServiceContainer  # noqa: E402
from nameko.standalone.events import event_dispatcher  # noqa: E402

from common.db import make_engine, session_scope  # noqa: E402
from common.migrate import upgrade  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from common.rrd.sources import format_value, vm_values  # noqa: E402
from common.rrd.cached import RrdCached  # noqa: E402
from common.rrd.store import MetricsStore  # noqa: E402
from labcloud.rabbit import RabbitNode  # noqa: E402
from labcloud.rrdcached import RrdCachedDaemon  # noqa: E402
from services.metrics import alarms, counters  # noqa: E402
from services.metrics.models import Alarm, AlarmHistory, OutboxMessage  # noqa: E402
from services.metrics.schemas import AlarmCreateRequest  # noqa: E402
from services.metrics.service import MetricsService  # noqa: E402
from common.schemas import load  # noqa: E402
from tests.mail_sink import MailSink  # noqa: E402

STEP = 5
ALARM_PERIOD = 60  # the instance alarms' (AlarmCreateRequest's default)
# The first judgement of a new alarm and the state change it brings (INSUFFICIENT_DATA to OK,
# a mail) happen once per alarm, not per sample: these rounds, after the alarms are made, take
# them past their first whole period with samples before the measured rounds begin.
SETTLE_ROUNDS = ALARM_PERIOD // STEP + 1
T0 = None  # the first sample's time, set by main()


def first_sample_time():
    """The next period boundary of the clock. The rounds replay minutes of agent time in seconds,
    so their times run ahead of the clock, as an agent's samples are ahead of the service's
    evaluation timer in service (it judges up to now - ALARM_GRACE_SECONDS): the sample batches
    judge the alarms, not the timer. Samples of long ago would leave every alarm to the timer."""
    return -(-int(time.time()) // ALARM_PERIOD) * ALARM_PERIOD


def wait_for_outbox(config, timeout=60):
    """Until no mail is pending (the settling rounds' state changes mailed, or given up: the bench
    runs no accounts service to give the owners' addresses), so its retries are not measured."""
    engine = make_engine(config["DATABASE_URL"])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with session_scope(engine) as session:
                if not session.scalar(select(func.count()).select_from(OutboxMessage)
                                      .where(OutboxMessage.state == "pending")):
                    return
            eventlet.sleep(0.2)
    finally:
        engine.dispose()
POLL_S = 0.005
ADMIN = {"id": 1, "username": "admin", "role": "admin", "projects": []}


def sample(instance_id, i):
    return {"instance_id": instance_id, "state": "running", "vcpus": 2,
            "cpu_time_ns": i * 15 * 10**8, "vcpu_time_ns": [i * 10**9, i * 5 * 10**8],
            "memory_kib": 1 << 20, "memory_internal_free_kib": 1 << 18,
            "disk_read_bytes": i * 4096, "disk_write_bytes": i * 8192,
            "disks": [{"device": "vda", "read_bytes": i * 4096, "write_bytes": i * 8192,
                       "read_reqs": i, "write_reqs": 2 * i}],
            "net_rx_bytes": i * 1000, "net_tx_bytes": i * 500,
            "nics": [{"index": 0, "rx_bytes": i * 1000, "tx_bytes": i * 500}]}


def iso(ts):
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).replace(tzinfo=None).isoformat() + "Z"


def host_sample(load_1m):
    return {"cpu_busy_ns": [0], "memory_total_kib": 4096, "memory_free_kib": 1024, "load_1m": load_1m,
            "interfaces": []}


def raw_rate(directory, vms, rounds):
    """rrdtool update calls per second on `vms` files of the service's layout."""
    store = MetricsStore(directory, STEP)
    ids = [str(uuid.uuid4()) for _ in range(vms)]
    for instance_id in ids:
        store.store(instance_id, T0, sample(instance_id, 0))  # creates the file
    names = {i: store.names_of(store.path_of(i)) for i in ids}
    work = []
    for r in range(1, rounds + 1):
        for instance_id in ids:
            values = vm_values(sample(instance_id, r))
            template = ":".join(names[instance_id])
            work.append((store.path_of(instance_id), template,
                         f"{T0 + r * STEP}:" + ":".join(format_value(n, values.get(n)) for n in names[instance_id])))
    start, cpu_start = time.perf_counter(), cpu_seconds()
    for path, template, update in work:
        rrdtool.update(path, "--template", template, update)
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
    return len(work) / elapsed, cpu / len(work)


def flush_daemon(address, timeout=120):
    """Seconds until rrdcached has written every file it held values for."""
    client = RrdCached(address)
    start = time.perf_counter()
    try:
        client.flush_all()
        deadline = time.monotonic() + timeout
        while int(client.stats()["QueueLength"]) > 0 and time.monotonic() < deadline:
            eventlet.sleep(POLL_S)
    finally:
        client.close()
    return time.perf_counter() - start


def cpu_seconds():
    """CPU time of this process, every thread: on a machine others load too, CPU per sample is
    what the wall-clock rates cannot show."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stored():
    return counters.samples_stored._value.get()


def stale():
    return counters.samples_rejected.labels("stale")._value.get()


def handled():
    """Samples the service is done with: stored, or dropped as older than the file's last one (the
    bench's batches of one host may be handled out of order by concurrent workers; an agent's,
    5 s apart, are not)."""
    return stored() + stale()


def ingest_rate(config, vms, per_host, rounds, first_round=0, hosts=None):
    """The events of `rounds` rounds are queued while no service consumes them, then a container
    starts and the time to handle them all is measured (publishing in this process would compete
    with the service for it). Returns the figures and the container, running."""
    dispatch = event_dispatcher(config)
    hosts = hosts or [[str(uuid.uuid4()) for _ in range(per_host)] for _ in range(max(1, vms // per_host))]
    before, stale_before = handled(), stale()
    total = sum(len(h) for h in hosts) * rounds
    publish_start = time.perf_counter()
    for r in range(first_round, first_round + rounds):
        for n, ids in enumerate(hosts):
            dispatch("hostagent", "domain_stats", {"host": f"ingest{n}", "at": iso(T0 + r * STEP),
                                                   "domains": [sample(i, r) for i in ids]})
    published = time.perf_counter() - publish_start
    container = ServiceContainer(MetricsService, config)
    start = time.perf_counter()
    container.start()
    deadline = time.monotonic() + 300
    while handled() == before and time.monotonic() < deadline:
        eventlet.sleep(POLL_S)
    # Sustained: from the first batch seen done, counting what was handled after it; the
    # container's start and its first batch (connections made, queries compiled) are left out.
    first, handled_first, cpu_first = time.perf_counter(), handled(), cpu_seconds()
    while handled() - before < total and time.monotonic() < deadline:
        eventlet.sleep(POLL_S)
    end = time.perf_counter()
    return {"samples_per_s": (handled() - handled_first) / (end - first), "samples": total,
            "cpu_s_per_sample": (cpu_seconds() - cpu_first) / max(1, handled() - handled_first),
            "handled": handled() - before, "stale": stale() - stale_before, "publish_s": published,
            "startup_s": first - start, "elapsed_s": end - start,
            "samples_per_s_with_startup": (handled() - before) / (end - start), "hosts": hosts}, container


def add_alarms(config, instance_ids, count):
    engine = make_engine(config["DATABASE_URL"])
    with session_scope(engine) as session:
        for instance_id in instance_ids[:count]:
            request = load(AlarmCreateRequest, {"instance": instance_id, "metric": "cpu_percent",
                                                "comparison": "GreaterThanThreshold", "threshold": 99})
            alarms.create(session, ADMIN, request, {"user_id": 1, "project": None}, dt.datetime.utcnow())
    engine.dispose()


def judged_since(config, when):
    """How many alarms were last judged with a reference from `when` (unix s) on: by a sample
    batch, as only they are of such times."""
    engine = make_engine(config["DATABASE_URL"])
    with session_scope(engine) as session:
        count = session.scalar(select(func.count()).select_from(Alarm)
                               .where(Alarm.evaluated_at >= alarms.from_unix(when)))
    engine.dispose()
    return count


def changes_since(config, when):
    """Alarm state changes recorded for a reference from `when` (unix s) on, as {old -> new: n}."""
    engine = make_engine(config["DATABASE_URL"])
    with session_scope(engine) as session:
        rows = session.execute(select(AlarmHistory.old_state, AlarmHistory.new_state, func.count())
                               .where(AlarmHistory.changed_at >= alarms.from_unix(when))
                               .group_by(AlarmHistory.old_state, AlarmHistory.new_state)).all()
    engine.dispose()
    return {f"{old} -> {new}": count for old, new, count in rows}


def last_boundary(first_round, rounds):
    """(the time of the last alarm period boundary among these rounds' samples, how many)."""
    times = [T0 + r * STEP for r in range(first_round, first_round + rounds)]
    boundaries = [t for t in times if t % ALARM_PERIOD == 0]
    return (boundaries[-1] if boundaries else None), len(boundaries)


def mails_for(sink, address):
    return [m for m in sink.messages() if m["To"] == address]


def alarm_latency(config, sink, breaches):
    """Seconds from sending a breaching host sample to its ALARM mail accepted by the sink."""
    engine = make_engine(config["DATABASE_URL"])
    with session_scope(engine) as session:
        request = load(AlarmCreateRequest, {"host": "bench-host", "metric": "loadavg",
                                            "comparison": "GreaterThanThreshold", "threshold": 5,
                                            "period": STEP, "evaluation_periods": 1,
                                            "emails": ["ops@bench.example"]})
        alarms.create(session, ADMIN, request, None, dt.datetime.utcnow())
    engine.dispose()
    dispatch = event_dispatcher(config)

    def send(load_1m):
        dispatch("hostagent", "domain_stats", {"host": "bench-host", "at": iso(time.time()), "domains": [],
                                               "host_sample": host_sample(load_1m)})

    latencies = []
    for _ in range(breaches):
        for _normal in range(3):  # back to OK
            send(0.1)
            eventlet.sleep(STEP)
        eventlet.sleep(STEP / 2)  # unaligned to the step, as an agent's clock is
        seen = {m["Message-ID"] for m in mails_for(sink, "ops@bench.example")}
        sent_at = time.time()
        send(9.0)
        next_sample = sent_at + STEP
        while True:
            new = [m for m in mails_for(sink, "ops@bench.example")
                   if m["Message-ID"] not in seen and m["Subject"].endswith(": ALARM")]
            if new:
                latencies.append(time.time() - sent_at)
                break
            if time.time() >= next_sample:  # the agent goes on sampling
                send(0.1)
                next_sample += STEP
            if time.time() - sent_at > 10 * STEP:
                latencies.append(None)
                break
            eventlet.sleep(0.02)
    return latencies


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=200)
    parser.add_argument("--vms-per-host", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--alarms", type=int, default=50)
    parser.add_argument("--breaches", type=int, default=3)
    parser.add_argument("--max-workers", type=int, default=10)
    parser.add_argument("--store", choices=("rrdcached", "direct"), default="rrdcached")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    # The bench runs no accounts service: the alarm owner's own copy of each mail is retried and
    # given up (the listed address's copy is the one timed); its warnings are not the bench's.
    logging.getLogger("services.metrics.sender").setLevel(logging.CRITICAL)
    base = tempfile.mkdtemp(prefix="labcloud-bench-ingest-")
    rabbit = RabbitNode(os.path.join(base, "rabbit")).start()
    sink = MailSink(os.path.join(base, "sink")).start()
    daemon = (RrdCachedDaemon(os.path.join(base, "rrdcached"), os.path.join(base, "metrics")).start()
              if args.store == "rrdcached" else None)
    try:
        global T0
        T0 = first_sample_time()
        print(f"load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; files in {base}")
        database = f"sqlite:///{os.path.join(base, 'metrics.sqlite')}"
        upgrade("services.metrics", database)
        config = {"AMQP_URI": rabbit.amqp_uri_for("/"), "DATABASE_URL": database,
                  "METRICS_DIR": os.path.join(base, "metrics"), "STEP": STEP, "SMTP_HOST": "127.0.0.1",
                  "SMTP_PORT": sink.port, "MAIL_FROM": "labcloud <cloud@bench.example>",
                  "MAIL_SEND_INTERVAL": 1, "MAIL_MAX_ATTEMPTS": 2, "MAIL_RETRY_BASE_SECONDS": 0.5, "ALARM_EVALUATE_INTERVAL": 5,
                  "ALARM_GRACE_SECONDS": 2 * STEP, "max_workers": args.max_workers,
                  "RRDCACHED_ADDRESS": daemon.address if daemon else None}
        # Warm-up: the service's queue declared (it outlives the container) and the files made;
        # the same VMs are then measured on existing files.
        container = ServiceContainer(MetricsService, config)
        container.start()
        container.stop()
        warm, container = ingest_rate(config, args.vms, args.vms_per_host, 1)
        container.stop()
        add_alarms(config, [i for h in warm["hosts"] for i in h], args.alarms)
        settle, container = ingest_rate(config, args.vms, args.vms_per_host, SETTLE_ROUNDS, 1, warm["hosts"])
        wait_for_outbox(config)
        container.stop()
        # Raw and service alternate, `--repeat` times: the machine's speed drifts between runs
        # (raw alone moved from 17,000 to 29,000 updates/s between runs on the build machine),
        # so each ratio compares two measurements made a few seconds apart.
        first_measured = 1 + SETTLE_ROUNDS
        runs = []
        for repeat in range(args.repeat):
            raw, raw_cpu = tpool.execute(raw_rate, os.path.join(base, f"raw{repeat}"), args.vms, args.rounds)
            if daemon:
                flush_daemon(daemon.address)  # each run starts with nothing held
                daemon_cpu = daemon.cpu_seconds()
            if repeat:
                container.stop()
            ingest, container = ingest_rate(config, args.vms, args.vms_per_host, args.rounds,
                                            first_measured + repeat * args.rounds, warm["hosts"])
            run = {"raw_rrdtool_updates_per_s": round(raw), "service_samples_per_s": round(ingest["samples_per_s"]),
                   "ratio": round(ingest["samples_per_s"] / raw, 3),
                   "raw_cpu_us_per_update": round(raw_cpu * 1e6, 1),
                   "service_cpu_us_per_sample": round(ingest["cpu_s_per_sample"] * 1e6, 1),
                   "handled": ingest["handled"], "stale_out_of_order": ingest["stale"],
                   "startup_s": round(ingest["startup_s"], 2)}
            if daemon:
                flush_s = flush_daemon(daemon.address)
                window = ingest["samples"] / ingest["samples_per_s"] + flush_s
                run.update({"daemon_flush_s": round(flush_s, 2),
                            "service_samples_per_s_including_the_daemons_writes": round(ingest["samples"] / window),
                            "daemon_cpu_us_per_sample": round((daemon.cpu_seconds() - daemon_cpu) / ingest["samples"] * 1e6, 1)})
            runs.append(run)
        try:
            latencies = alarm_latency(config, sink, args.breaches)
        finally:
            container.stop()
        measured = args.repeat * args.rounds
        boundary, boundaries = last_boundary(first_measured, measured)
        judged = judged_since(config, boundary) if boundary is not None else 0
        changes = changes_since(config, T0 + first_measured * STEP)
        result = {"store": args.store, "median_ratio": statistics.median(run["ratio"] for run in runs),
                  "runs": runs, "samples_per_run": args.vms * args.rounds,
                  "max_workers": args.max_workers, "alarms": args.alarms,
                  "alarm_period_ends_in_measured_rounds": boundaries,
                  "alarms_judged_by_a_batch_since_the_last": judged,
                  "alarm_state_changes_in_measured_rounds": changes, "step_s": STEP,
                  "settle_samples_per_s_with_first_judgements": round(settle["samples_per_s_with_startup"]),
                  "alarm_mail_latency_s": [None if x is None else round(x, 2) for x in latencies],
                  "alarm_mail_latency_steps": [None if x is None else round(x / STEP, 2) for x in latencies],
                  "load_average_after": round(os.getloadavg()[0], 2)}
        print(json.dumps(result, indent=2))
    finally:
        sink.stop()
        if daemon:
            daemon.stop()
        rabbit.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
