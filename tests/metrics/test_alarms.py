"""Alarms for real: the metrics service with the instances service and every service it needs
(accounts, network, storage, a host agent on test:///default: tests/instances/services.py), the
real broker, SQLite databases and labcloud's aiosmtpd sink as the SMTP server. Samples go in as a
host agent publishes them (`domain_stats`, its schema), timed a few minutes back so that the
test drives the periods (the real agent's first own sample comes STATS_INTERVAL = 60 s after it
starts, later than any of this)."""
import time

import pytest
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_hook, entrypoint_waiter

from common.errors import Forbidden, InvalidInput, NotFound
from services.metrics.service import MetricsService
from tests.instances.services import running_cloud, wait
from tests.mail_sink import MailSink
from tests.metrics.test_service import domain, iso

PERIOD = 10


@pytest.fixture
def sink(tmp_path):
    sink = MailSink(str(tmp_path / "sink")).start()
    yield sink
    sink.stop()


@pytest.fixture
def cloud(container_factory, service_config, migrated_database, tmp_path, sink):
    with running_cloud(container_factory, service_config, migrated_database, {"HOST_STALE_AFTER": 30}) as c:
        c.metrics_config = service_config(
            DATABASE_URL=migrated_database("services.metrics"), METRICS_DIR=str(tmp_path / "metrics"),
            STEP=5, SMTP_HOST="127.0.0.1", SMTP_PORT=sink.port, MAIL_FROM="labcloud <cloud@lab.example>",
            MAIL_SEND_INTERVAL=0.2, MAIL_RETRY_BASE_SECONDS=0.3, MAIL_RETRY_MAX_SECONDS=1,
            ALARM_EVALUATE_INTERVAL=3600)  # the tests call the timer's entry point themselves
        c.metrics = container_factory(MetricsService, c.metrics_config)
        c.metrics.start()
        yield c


def running_instance(cloud, name="vm"):
    inst = cloud.rpc.instances.create_instance(cloud.actor, {"name": name, "flavor": 1, "image": 1,
                                                             "key": cloud.key["id"]})
    wait(lambda: cloud.rpc.instances.get_instance(cloud.actor, inst["id"])["state"] == "running",
         timeout=30, what="running")
    return inst["id"]


def start_time():
    """A period boundary a few minutes back (inside rrdtool's 10 minutes of 5 s rows)."""
    return (int(time.time()) - 300) // 60 * 60


def send(cloud, at, instance_id, i, cpu_per_s):
    """The agent's batch at `at`: the instance has run i steps of 5 s, the last at cpu_per_s."""
    payload = {"host": cloud.host, "at": iso(at),
               "domains": [domain(instance_id, i, vcpu_time_ns=[int(cpu_time(i, cpu_per_s))])]}
    with entrypoint_waiter(cloud.metrics, "handle_domain_stats", timeout=10):
        event_dispatcher(cloud.metrics_config)("hostagent", "domain_stats", payload)


_cpu = {}


def cpu_time(i, cpu_per_s):
    """Cumulative vCPU ns after step i when each step ran at its own rate (kept per test run)."""
    total = _cpu.get(i - 1, 0) + 5 * cpu_per_s if i > 0 else 0
    _cpu[i] = total
    return total


def feed(cloud, instance_id, t0, steps, busy):
    """Samples for steps (i, busy?) at t0 + 5 i: busy is 90 % of a CPU, idle 10 %."""
    for i in steps:
        send(cloud, t0 + 5 * i, instance_id, i, 0.9e9 if busy(i) else 0.1e9)


def alarm_request(instance_id, **overrides):
    return dict({"instance": instance_id, "metric": "cpu_percent", "statistic": "average",
                 "comparison": "GreaterThanThreshold", "threshold": 50, "period": PERIOD,
                 "evaluation_periods": 2, "datapoints_to_alarm": 2, "missing_data": "missing",
                 "emails": ["ops@lab.example"]}, **overrides)


def states(cloud, alarm_id):
    return [(h["old_state"], h["new_state"]) for h in
            reversed(cloud.rpc.metrics.get_alarm_history(cloud.actor, alarm_id))]


def text(mail):
    return " ".join(mail.get_payload(decode=True).decode().split())


def test_a_busy_instance_alarms_mails_its_owner_and_returns_to_ok(cloud, sink):
    _cpu.clear()
    instance_id = running_instance(cloud)
    alarm = cloud.rpc.metrics.create_alarm(cloud.actor, alarm_request(instance_id))
    assert alarm["state"] == "INSUFFICIENT_DATA" and alarm["datapoints_to_alarm"] == 2
    t0 = start_time()
    feed(cloud, instance_id, t0, range(0, 5), busy=lambda i: True)        # busy up to t0 + 20
    got = cloud.rpc.metrics.get_alarm(cloud.actor, alarm["id"])
    assert got["state"] == "ALARM" and got["state_value"] == pytest.approx(90, abs=1), got
    mails = sink.wait_for(4)  # INSUFFICIENT_DATA -> OK (one busy period of two), OK -> ALARM: each to owner and ops
    alarmed = [m for m in mails if m["Subject"] == f"labcloud alarm {alarm['name']}: ALARM"]
    assert sorted(m["To"] for m in alarmed) == ["ada@lab.example", "ops@lab.example"]
    body = text(alarmed[0])
    assert f"On: instance {instance_id}" in body and "Metric: cpu_percent (average)" in body
    assert "Threshold: GreaterThanThreshold 50" in body and "Value: 90" in body
    assert len({m["Message-ID"] for m in alarmed}) == 2

    feed(cloud, instance_id, t0, range(5, 9), busy=lambda i: False)       # idle from t0 + 20
    assert cloud.rpc.metrics.get_alarm(cloud.actor, alarm["id"])["state"] == "OK"
    assert states(cloud, alarm["id"]) == [("INSUFFICIENT_DATA", "OK"), ("OK", "ALARM"), ("ALARM", "OK")]
    mails = sink.wait_for(6)
    time.sleep(1)  # five sender ticks: nothing more goes out
    assert len(sink.messages()) == 6
    # A redelivered batch of a judged period changes nothing.
    send(cloud, t0 + 40, instance_id, 8, 0.1e9)
    assert len(states(cloud, alarm["id"])) == 3


def test_each_missing_data_mode(cloud, sink):
    _cpu.clear()
    instance_id = running_instance(cloud)
    modes = ("missing", "ignore", "breaching", "notBreaching")
    alarms = {mode: cloud.rpc.metrics.create_alarm(cloud.actor, alarm_request(instance_id, missing_data=mode,
                                                                              emails=[]))["id"]
              for mode in modes}
    t0 = start_time()
    # The first period (t0 - 10, t0] has no datapoint, the second is busy.
    feed(cloud, instance_id, t0, range(0, 3), busy=lambda i: True)
    after_one = {m: cloud.rpc.metrics.get_alarm(cloud.actor, a)["state"] for m, a in alarms.items()}
    assert after_one == {"missing": "OK", "ignore": "OK", "breaching": "ALARM", "notBreaching": "OK"}
    feed(cloud, instance_id, t0, range(3, 5), busy=lambda i: True)
    assert {cloud.rpc.metrics.get_alarm(cloud.actor, a)["state"] for a in alarms.values()} == {"ALARM"}
    # Minutes later nothing has come: the timer judges periods with no datapoint at all.
    with entrypoint_hook(cloud.metrics, "evaluate_alarms") as evaluate:
        evaluate()
    now = {m: cloud.rpc.metrics.get_alarm(cloud.actor, a)["state"] for m, a in alarms.items()}
    assert now == {"missing": "INSUFFICIENT_DATA", "ignore": "ALARM", "breaching": "ALARM",
                   "notBreaching": "OK"}


def test_mail_waits_for_the_smtp_server_and_arrives_once(cloud, sink):
    _cpu.clear()
    instance_id = running_instance(cloud)
    alarm = cloud.rpc.metrics.create_alarm(cloud.actor, alarm_request(instance_id))
    sink.stop()
    t0 = start_time()
    feed(cloud, instance_id, t0, range(0, 5), busy=lambda i: True)
    feed(cloud, instance_id, t0, range(5, 9), busy=lambda i: False)
    assert len(states(cloud, alarm["id"])) == 3
    time.sleep(5)  # several failed attempts (backoff 0.3 s doubling to 1 s)
    sink.start()
    mails = sink.wait_for(6)
    time.sleep(2)
    mails = sink.messages()
    assert len(mails) == 6 and len({m["Message-ID"] for m in mails}) == 6


def test_rights_and_bad_input(cloud):
    instance_id = running_instance(cloud)
    other = cloud.new_user("bob")
    with pytest.raises(NotFound):  # bob cannot see ada's instance
        cloud.rpc.metrics.create_alarm(other, alarm_request(instance_id))
    with pytest.raises(Forbidden):
        cloud.rpc.metrics.create_alarm(cloud.actor, {"host": cloud.host, "metric": "loadavg",
                                                     "comparison": "GreaterThanThreshold", "threshold": 4})
    for field, bad in (("metric", {"metric": "loadavg"}), ("statistic", {"statistic": "median"}),
                       ("comparison", {"comparison": "Above"}), ("period", {"period": 7}),
                       ("datapoints_to_alarm", {"datapoints_to_alarm": 3}),
                       ("missing_data", {"missing_data": "zero"}), ("emails", {"emails": ["not-mail"]}),
                       ("actions", {"actions": [{"type": "resize"}]})):
        with pytest.raises(InvalidInput) as err:
            cloud.rpc.metrics.create_alarm(cloud.actor, alarm_request(instance_id, **bad))
        assert field in err.value.fields, (field, err.value.fields)
    alarm = cloud.rpc.metrics.create_alarm(cloud.actor, alarm_request(instance_id))
    with pytest.raises(NotFound):
        cloud.rpc.metrics.get_alarm_history(other, alarm["id"])
    assert cloud.rpc.metrics.list_alarms(other) == []
    assert [a["id"] for a in cloud.rpc.metrics.list_alarms(cloud.admin)] == [alarm["id"]]
    host_alarm = cloud.rpc.metrics.create_alarm(cloud.admin, {"host": cloud.host, "metric": "loadavg",
                                                              "comparison": "GreaterThanThreshold",
                                                              "threshold": 4})
    assert host_alarm["host"] == cloud.host and host_alarm["instance"] is None
    with pytest.raises(NotFound):
        cloud.rpc.metrics.delete_alarm(other, alarm["id"])
    assert cloud.rpc.metrics.delete_alarm(cloud.actor, alarm["id"]) == {"deleted": True}
    assert cloud.rpc.metrics.delete_alarm(cloud.actor, alarm["id"]) == {"deleted": False}
    with pytest.raises(NotFound):
        cloud.rpc.metrics.get_alarm(cloud.actor, alarm["id"])


def test_an_alarm_resizes_its_instance_as_its_owner(cloud):
    _cpu.clear()
    instance_id = running_instance(cloud)
    alarm = cloud.rpc.metrics.create_alarm(cloud.actor, alarm_request(
        instance_id, emails=[], actions=[{"type": "resize", "flavor": 2, "confirm_restart": True}]))
    t0 = start_time()
    feed(cloud, instance_id, t0, range(0, 5), busy=lambda i: True)
    resized = wait(lambda: (i := cloud.rpc.instances.get_instance(cloud.actor, instance_id))["flavor"] == 2
                   and i["state"] == "running" and i, timeout=30, what="resized")
    assert resized["flavor"] == 2
    [change] = [h for h in cloud.rpc.metrics.get_alarm_history(cloud.actor, alarm["id"])
                if h["new_state"] == "ALARM"]
    assert "resize to flavor 2" in change["actions_result"], change
