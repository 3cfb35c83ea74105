"""Scheduled actions for real: metrics service containers (two replicas where it matters) with
the instances service and every service it needs (tests/instances/services.py: a host agent on
test:///default), the real broker and SQLite databases. The metrics service's clock runs ahead
of the real one by a shift the test sets, so a cron schedule comes due without waiting for it."""
import datetime as dt

import pytest

from common.clock import Clock, utcnow
from common.errors import Forbidden, InvalidInput, NotFound
from services.metrics.service import MetricsService
from tests.instances.services import running_cloud, wait
from tests.metrics.test_alarms import running_instance


class ShiftedClock:
    """utcnow() plus a shift the test moves: the service's idea of now."""

    def __init__(self):
        self.shift = dt.timedelta(0)

    def __call__(self):
        return utcnow() + self.shift


SHIFTED = ShiftedClock()


class ShiftedMetricsService(MetricsService):
    clock = Clock(SHIFTED)


@pytest.fixture
def cloud(container_factory, service_config, migrated_database, tmp_path):
    SHIFTED.shift = dt.timedelta(0)
    with running_cloud(container_factory, service_config, migrated_database, {"HOST_STALE_AFTER": 30}) as c:
        config = service_config(
            DATABASE_URL=migrated_database("services.metrics"), METRICS_DIR=str(tmp_path / "metrics"),
            STEP=5, SMTP_HOST="127.0.0.1", SMTP_PORT=9, ALARM_EVALUATE_INTERVAL=3600,
            SCHEDULE_INTERVAL=0.3, ACTION_RETRY_BASE_SECONDS=0.3)
        c.metrics_replicas = [container_factory(ShiftedMetricsService, config) for _ in range(2)]
        for replica in c.metrics_replicas:
            replica.start()
        yield c


def state_of(cloud, instance_id):
    return cloud.rpc.instances.get_instance(cloud.actor, instance_id)["state"]


def soon(seconds=1.5):
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)).isoformat()


def finished_runs(cloud, schedule_id, count, actor=None):
    def finished():
        runs = cloud.rpc.metrics.get_schedule_history(actor or cloud.actor, schedule_id)
        done = [run for run in runs if run["outcome"] != "pending"]
        return len(done) >= count and done
    return wait(finished, timeout=30, what=f"{count} finished runs")


def test_a_one_time_stop_runs_once_on_two_replicas_as_its_creator(cloud):
    instance_id = running_instance(cloud)
    made = cloud.rpc.metrics.create_schedule(cloud.actor, {"instance": instance_id, "action": "stop",
                                                           "at": soon()})
    assert made["state"] == "active" and made["user_id"] == cloud.actor["id"]
    [run] = finished_runs(cloud, made["id"], 1)
    assert run["outcome"] == "ok" and run["action"] == "stop" and run["result"].startswith("stop:"), run
    wait(lambda: state_of(cloud, instance_id) == "stopped", timeout=30, what="stopped")
    assert cloud.rpc.metrics.get_schedule(cloud.actor, made["id"])["state"] == "done"
    SHIFTED.shift = dt.timedelta(days=1)  # a day later: nothing more runs
    wait(lambda: True, timeout=1)
    assert len(cloud.rpc.metrics.get_schedule_history(cloud.actor, made["id"])) == 1


def test_a_cron_schedule_resizes_once_after_missed_days_and_another_starts(cloud):
    instance_id = running_instance(cloud)
    cloud.rpc.instances.stop_instance(cloud.actor, instance_id)
    wait(lambda: state_of(cloud, instance_id) == "stopped", timeout=30, what="stopped")
    resize = cloud.rpc.metrics.create_schedule(cloud.actor, {
        "instance": instance_id, "action": "resize", "flavor": 2, "cron": "0 8 * * *", "timezone": "Europe/Paris"})
    first = dt.datetime.fromisoformat(resize["next_run_at"])
    assert first.astimezone(dt.timezone(dt.timedelta(hours=1))).hour in (8, 9)  # 08:00 Paris, UTC+1 or +2
    # Three days pass while the service sleeps: the resize runs once, not three times.
    SHIFTED.shift = first.replace(tzinfo=None) - utcnow() + dt.timedelta(days=2, minutes=1)
    [resized] = finished_runs(cloud, resize["id"], 1)
    assert resized["outcome"] == "ok" and "resize to flavor 2" in resized["result"], resized
    wait(lambda: cloud.rpc.instances.get_instance(cloud.actor, instance_id)["flavor"] == 2, what="resized")
    # Started by the next hour's run of an hourly schedule (made after the resize: one at a time).
    start = cloud.rpc.metrics.create_schedule(cloud.actor, {"instance": instance_id, "action": "start",
                                                            "cron": "0 * * * *"})
    SHIFTED.shift += dt.timedelta(hours=1)
    [started] = finished_runs(cloud, start["id"], 1)
    assert started["outcome"] == "ok", started
    wait(lambda: state_of(cloud, instance_id) == "running", timeout=30, what="running")
    again = cloud.rpc.metrics.get_schedule(cloud.actor, resize["id"])
    assert dt.datetime.fromisoformat(again["next_run_at"]) == first + dt.timedelta(days=3)
    SHIFTED.shift += dt.timedelta(days=1)
    assert len(finished_runs(cloud, resize["id"], 2)) == 2  # the next day's, once


def test_a_refused_action_is_recorded_as_an_error(cloud):
    instance_id = running_instance(cloud)
    # A resize of a running guest that needs a restart nobody confirmed: the instances service
    # refuses the run, and the history says why.
    made = cloud.rpc.metrics.create_schedule(cloud.actor, {"instance": instance_id, "action": "resize", "flavor": 2,
                                                           "at": soon()})
    [run] = finished_runs(cloud, made["id"], 1)
    assert run["outcome"] == "error" and "confirm_restart" in run["result"], run
    assert cloud.rpc.instances.get_instance(cloud.actor, instance_id)["flavor"] == 1


def test_a_teachers_schedule_is_limited_to_what_the_teacher_may_do_and_shown_to_the_student(cloud):
    instance_id = running_instance(cloud)
    teacher = cloud.new_user("tina", role="manager")
    later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)).isoformat()
    # A resize is the owner's (the owner's quota pays) and admins': refused when made, not when run.
    with pytest.raises(Forbidden) as refused:
        cloud.rpc.metrics.create_schedule(teacher, {"instance": instance_id, "action": "resize", "flavor": 2,
                                                    "confirm_restart": True, "at": later})
    assert "resize this instance" in str(refused.value)
    # A stop at night is the teacher's to make: the student sees it but cannot delete it.
    night = cloud.rpc.metrics.create_schedule(teacher, {"instance": instance_id, "action": "stop",
                                                        "cron": "0 22 * * *"})
    assert [s["id"] for s in cloud.rpc.metrics.list_schedules(cloud.actor, instance_id)] == [night["id"]]
    assert cloud.rpc.metrics.get_schedule(cloud.actor, night["id"])["user_id"] == teacher["id"]
    with pytest.raises(NotFound):
        cloud.rpc.metrics.delete_schedule(cloud.actor, night["id"])
    assert cloud.rpc.metrics.delete_schedule(teacher, night["id"]) == {"deleted": True}


def test_rights_bad_input_tokens_and_deleted_instances(cloud):
    instance_id = running_instance(cloud)
    other = cloud.new_user("bob")
    later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)).isoformat()
    request = {"instance": instance_id, "action": "stop", "at": later}
    with pytest.raises(NotFound):  # bob cannot see ada's instance
        cloud.rpc.metrics.create_schedule(other, request)
    past = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)).isoformat()
    for field, bad in (("at", {"at": past}), ("at", {"at": "2030-01-01T08:00"}),
                       ("at", {"cron": "0 8 * * *"}), ("cron", {"at": None, "cron": "0 8 * *"}),
                       ("timezone", {"at": None, "cron": "0 8 * * *", "timezone": "Mars/Olympus"}),
                       ("flavor", {"action": "resize"}), ("flavor", {"action": "resize", "flavor": 999}),
                       ("action", {"action": "reboot"})):
        with pytest.raises(InvalidInput) as err:
            cloud.rpc.metrics.create_schedule(cloud.actor, dict(request, **bad))
        assert field in err.value.fields, (field, err.value.fields)
    first = cloud.rpc.metrics.create_schedule(cloud.actor, dict(request, client_token="nightly-1"))
    assert cloud.rpc.metrics.create_schedule(cloud.actor, dict(request, client_token="nightly-1")) == first
    alarm = {"instance": instance_id, "metric": "cpu_percent", "comparison": "GreaterThanThreshold",
             "threshold": 50, "client_token": "cpu-1"}
    assert cloud.rpc.metrics.create_alarm(cloud.actor, alarm) == cloud.rpc.metrics.create_alarm(cloud.actor, alarm)
    assert len(cloud.rpc.metrics.list_alarms(cloud.actor)) == 1
    assert cloud.rpc.metrics.list_schedules(other) == []
    with pytest.raises(NotFound):
        cloud.rpc.metrics.get_schedule_history(other, first["id"])
    with pytest.raises(NotFound):
        cloud.rpc.metrics.delete_schedule(other, first["id"])
    assert [s["id"] for s in cloud.rpc.metrics.list_schedules(cloud.admin, instance_id)] == [first["id"]]
    second = cloud.rpc.metrics.create_schedule(cloud.actor, request)
    assert cloud.rpc.metrics.delete_schedule(cloud.actor, second["id"]) == {"deleted": True}
    assert cloud.rpc.metrics.delete_schedule(cloud.actor, second["id"]) == {"deleted": False}
    alarm = cloud.rpc.metrics.create_alarm(cloud.actor, {"instance": instance_id, "metric": "cpu_percent",
                                                         "comparison": "GreaterThanThreshold", "threshold": 90})
    cloud.rpc.instances.delete_instance(cloud.actor, instance_id)
    wait(lambda: cloud.rpc.metrics.list_schedules(cloud.actor) == [], timeout=30, what="schedules gone")
    # Its alarms go with it (one instance_deleted handler: metrics, schedules, alarms).
    wait(lambda: cloud.rpc.metrics.list_alarms(cloud.admin) == [], timeout=30, what="alarms gone")
    with pytest.raises(NotFound):
        cloud.rpc.metrics.get_alarm(cloud.admin, alarm["id"])
