"""Quotas on a real migrated database: what each state counts, the check at and over the limit, the
per-user share, start from stopped, deletes freeing quota, and processes racing for the last places
of a project on SQLite and on PostgreSQL."""
import json
import os
import sys
import uuid

import pytest
from sqlalchemy import func, select, update

from common.errors import QuotaExceeded
from common.migrate import upgrade
from services.instances import lifecycle, power, quotas, states
from services.instances.models import Instance, QuotaLock
from tests.instances.fakes import (
    ACTOR, CLASSMATE, NOW, OTHER_PROJECT, PROJECT, TEACHER, FakeCloud, flavor_named, limits_of, new_instance,
    running_instance)
from tests.instances.racing import race

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def project_limits(**limits):
    return {"project": limits, "user": {}}


def live_instances(session):
    return session.scalar(select(func.count()).select_from(Instance).where(Instance.state != "deleted"))


def test_exactly_at_the_limit_passes_and_one_more_is_refused(session):
    limits = project_limits(instances=2)
    new_instance(session, "a", limits=limits)
    new_instance(session, "b", limits=limits)
    with pytest.raises(QuotaExceeded) as err:
        new_instance(session, "c", limits=limits)
    assert err.value.fields == {"instances": ["project limit 2, in use 2, requested 1"]}
    assert str(err.value) == "over quota (instances: project limit 2, in use 2, requested 1)"
    assert err.value.http_status == 403
    assert live_instances(session) == 2  # nothing written


def test_vcpus_and_memory_count_the_flavors(session):
    limits = project_limits(vcpus=3, memory_mib=640)
    new_instance(session, "big", "large", limits=limits)      # 2 vCPUs, 512 MiB
    new_instance(session, "small", "small", limits=limits)    # 1 vCPU, 128 MiB: exactly at both limits
    with pytest.raises(QuotaExceeded) as err:
        new_instance(session, "more", "small", limits=limits)
    assert err.value.fields == {"vcpus": ["project limit 3, in use 3, requested 1"],
                                "memory_mib": ["project limit 640, in use 640, requested 128"]}


def test_unlimited_and_other_projects_do_not_count(session):
    limits = project_limits(instances=1, vcpus=None)
    new_instance(session, "elsewhere", actor=TEACHER, project=OTHER_PROJECT, limits=limits)
    new_instance(session, "here", limits=limits)


def test_each_user_has_a_share_of_the_project(session):
    limits = {"project": {"instances": 3}, "user": {"instances": 1}}
    new_instance(session, "ada-1", limits=limits)
    with pytest.raises(QuotaExceeded) as err:
        new_instance(session, "ada-2", limits=limits)
    assert err.value.fields == {"instances": ["your share: user limit 1, in use 1, requested 1"]}
    new_instance(session, "bob-1", actor=CLASSMATE, limits=limits)   # another user's share


def test_deleting_frees_the_quota(session):
    cloud = FakeCloud()
    limits = project_limits(instances=1)
    first = running_instance(session, cloud)
    with pytest.raises(QuotaExceeded):
        new_instance(session, "second", limits=limits)
    lifecycle.request_delete(session, ACTOR, first.id)   # `deleting` no longer counts
    second = new_instance(session, "second", limits=limits)
    lifecycle.request_delete(session, ACTOR, second.id)  # pending: `deleted` at once
    new_instance(session, "third", limits=limits)


def test_start_from_stopped_takes_compute_again(session):
    cloud = FakeCloud()
    limits = project_limits(memory_mib=128)
    inst = running_instance(session, cloud)
    lifecycle.request_power(session, ACTOR, inst.id, "stop", limits_of(limits))
    assert power.run_power(session, inst.id, "stop", cloud.peers.hosts, lambda: NOW) == "stopped"
    other = new_instance(session, "other", limits=limits)     # the stopped guest uses no memory
    with pytest.raises(QuotaExceeded) as err:
        lifecycle.request_power(session, ACTOR, inst.id, "start", limits_of(limits))
    assert err.value.fields == {"memory_mib": ["project limit 128, in use 128, requested 128"]}
    assert session.get(Instance, inst.id).state == "stopped"
    lifecycle.request_delete(session, ACTOR, other.id)
    instance, requested = lifecycle.request_power(session, ACTOR, inst.id, "start", limits_of(limits))
    assert requested and instance.state == "starting"


def test_a_start_is_charged_to_the_owners_share_whoever_asks(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    lifecycle.request_power(session, ACTOR, inst.id, "stop", limits_of())
    power.run_power(session, inst.id, "stop", cloud.peers.hosts, lambda: NOW)
    asked = []

    def limits(project_id, user_id):
        asked.append((project_id, user_id))
        return {"project": {}, "user": {"vcpus": 0}}
    with pytest.raises(QuotaExceeded) as err:
        lifecycle.request_power(session, TEACHER, inst.id, "start", limits)
    assert asked == [(PROJECT, ACTOR["id"])] and list(err.value.fields) == ["vcpus"]


def test_stop_and_reboot_take_nothing_and_ask_for_no_limits(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)

    def no_call(project_id, user_id):
        raise AssertionError("limits asked for a request that takes nothing")
    lifecycle.request_power(session, ACTOR, inst.id, "reboot", no_call)
    power.run_power(session, inst.id, "reboot", cloud.peers.hosts, lambda: NOW)
    lifecycle.request_power(session, ACTOR, inst.id, "stop", no_call)


def test_usage_counts_each_state_as_states_py_says(session):
    small, large = flavor_named(session, "small"), flavor_named(session, "large")
    expected = {"instances": 0, "vcpus": 0, "memory_mib": 0}
    for name in states.STATES:
        inst = new_instance(session, f"s-{name.replace('_', '-')}", "large" if name == "running" else "small")
        session.execute(update(Instance).where(Instance.id == inst.id).values(state=name))
        for resource, amount in quotas.usage_in(large if name == "running" else small, name).items():
            expected[resource] += amount
    session.commit()
    assert expected == {"instances": 11, "vcpus": 10, "memory_mib": 8 * 128 + 512}   # (migrating: like running)
    assert quotas.project_usage(session, PROJECT) == {"project": expected, "users": {ACTOR["id"]: expected}}
    assert quotas.project_usage(session, 999) == {
        "project": {"instances": 0, "vcpus": 0, "memory_mib": 0}, "users": {}}


def test_the_lock_row_is_made_on_the_first_check_and_taken_on_every_one(session):
    new_instance(session, "a", limits=project_limits(instances=5))
    new_instance(session, "b", limits=project_limits(instances=5))
    assert session.scalars(select(QuotaLock)).all()[0].counter == 2
    assert [row.project_id for row in session.scalars(select(QuotaLock))] == [PROJECT]


# ----- the race --------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, migrated_database):
    if request.param == "sqlite":
        return migrated_database("services.instances")
    url = request.getfixturevalue("postgres").create_database(f"quota_race_{uuid.uuid4().hex[:8]}")
    upgrade("services.instances", url)
    return url


def test_processes_racing_for_the_last_places_never_exceed_the_quota(database_url):
    """Four processes (as four replicas would) each try six creates in one project at the same
    moment; the project may hold ten instances, each user at most four."""
    limits = json.dumps({"project": {"instances": 10}, "user": {"instances": 4}})
    outputs = race([[sys.executable, "-m", "tests.quota_race_worker", "instances", database_url, str(100 + n), "6",
                     limits] for n in range(4)], REPO)
    results = [json.loads(out) for out in outputs]
    assert sum(r["accepted"] for r in results) == 10, results
    assert all(r["accepted"] <= 4 for r in results) and sum(r["refused"] for r in results) == 14, results
