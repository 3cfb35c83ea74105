"""Placement (scheduler.py, placement.py) on a real migrated database: every filter refuses naming
itself, allocation ratios, host states, spread and pack, anti-affinity, image minimums, the
allocation counters against a recount after a randomized run of creates, moves, size changes and
deletes, two processes claiming the last room of one host (SQLite and PostgreSQL), and migration
0006's backfill."""
import datetime as dt
import json
import os
import random
import sys
import uuid

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import update

from common.errors import CapacityExhausted, InvalidInput, NotFound
from common.migrate import alembic_config, upgrade
from services.instances import instance_store, lifecycle, saga, scheduler, states
from services.instances.models import Host, Instance
from services.instances.placement import Request
from tests.instances.fakes import (
    ACTOR, CLASSMATE, NOW, POLICY, FakeCloud, flavor_named, new_instance)
from tests.instances.racing import race

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = Request(flavor="small", vcpus=1, memory_mib=128, disk_gib=1)


def heartbeat(session, name, vcpus=4, memory_mib=1024, disk_gib=None, at=NOW, policy=POLICY, **used):
    beat = {"host": name, "hypervisor": "TEST", "vcpus": vcpus, "memory_mib": memory_mib, **used}
    if disk_gib is not None:
        beat["disk_gib"] = disk_gib
    return scheduler.record_heartbeat(session, beat, at, policy)[0]


def pick(session, request=SMALL, policy=POLICY, now=NOW):
    """pick_host, then let the claim go (nothing is taken)."""
    try:
        return scheduler.pick_host(session, request, now, policy)
    finally:
        session.rollback()


def refusal(session, request=SMALL, policy=POLICY, now=NOW):
    with pytest.raises(CapacityExhausted) as err:
        scheduler.pick_host(session, request, now, policy)
    return str(err.value), err.value.fields


def placed(session, flavor_name="small", actor=ACTOR, group=None, anti_affinity=False, policy=POLICY, image=None):
    """A new instance placed as the create saga does it (pick_host, then the move to building)."""
    inst = new_instance(session, f"vm-{uuid.uuid4().hex[:8]}", flavor_name, actor=actor)
    if group is not None:
        instance_store.update_fields(session, inst.id, ["pending"], placement_group=group, anti_affinity=anti_affinity)
        session.refresh(inst)
    request = scheduler.request_for(flavor_named(session, flavor_name), inst, image)
    host = scheduler.pick_host(session, request, NOW, policy)
    assert instance_store.move(session, inst.id, "saga:schedule", host=host) == "building"
    session.refresh(inst)
    return inst


def assert_counters_match(session):
    counted = scheduler.counted_allocations(session)
    stored = scheduler.stored_allocations(session)
    assert stored == {name: counted.get(name, (0, 0, 0, 0)) for name in stored}
    assert set(counted) <= set(stored)


# ----- filters ---------------------------------------------------------------------------------

def test_each_filter_refuses_naming_itself_and_counting_what_each_removed(session):
    # conftest's h1: 4 vCPUs, 512 MiB, heard at NOW.
    heartbeat(session, "h2", vcpus=1, memory_mib=4096)
    heartbeat(session, "h3", vcpus=8, memory_mib=4096, disk_gib=10)
    heartbeat(session, "h4", at=NOW - dt.timedelta(minutes=5))
    scheduler.set_host_state(session, "h4", "disabled")
    heartbeat(session, "h5", at=NOW - dt.timedelta(minutes=5))

    message, fields = refusal(session, Request(flavor="big", vcpus=8, memory_mib=1024, disk_gib=20))
    assert message == ("no host has room for flavor big: 5 hosts; image: 0, disabled: 1, down: 1, cpu: 1, "
                       "memory: 1, disk: 1 (the disk filter removed the last)")
    assert fields["filter"] == ["disk"]
    message, _ = refusal(session, Request(flavor="wide", vcpus=40, memory_mib=128, disk_gib=1))
    assert message.endswith("disabled: 1, down: 1, cpu: 3, memory: 0, disk: 0 (the cpu filter removed the last)")
    message, _ = refusal(session, Request(flavor="fat", vcpus=1, memory_mib=8192, disk_gib=1))
    assert message.endswith("cpu: 0, memory: 3, disk: 0 (the memory filter removed the last)")
    assert message.startswith("no host has room for flavor fat: 5 hosts")

    for name in ("h1", "h2", "h3", "h5"):
        scheduler.set_host_state(session, name, "draining")
    message, fields = refusal(session)
    assert message.startswith("no hypervisor host is enabled: 5 hosts; image: 0, disabled: 5, down: 0")
    assert "(the disabled filter removed the last)" in message and fields["filter"] == ["disabled"]
    for name in ("h1", "h2", "h3", "h5"):
        scheduler.set_host_state(session, name, "enabled")
    message, _ = refusal(session, now=NOW + dt.timedelta(minutes=10))
    assert message.startswith("no hypervisor host is up: 5 hosts; image: 0, disabled: 1, down: 4")
    assert message.endswith("(the down filter removed the last)")


def test_no_host_at_all(session):
    session.execute(sa.delete(Host))
    session.commit()
    message, _ = refusal(session)
    assert message.startswith("no hypervisor host is up: 0 hosts;")


def test_a_flavor_below_the_images_minimums_is_refused_by_the_image_filter(session):
    small = flavor_named(session, "small")   # 1 GiB disk, 128 MiB
    message, fields = refusal(session, scheduler.request_for(small, image={"min_disk_gib": 2}))
    assert message == ("flavor small is below the image's minimum: 1 host; image: 1, disabled: 0, down: 0, cpu: 0, "
                       "memory: 0, disk: 0 (the image filter removed the last: flavor small has 1 GiB of disk, "
                       "the image needs 2)")
    assert fields["filter"] == ["image"]
    message, _ = refusal(session, scheduler.request_for(small, image={"min_disk_gib": 1, "min_memory_mib": 256}))
    assert "flavor small has 128 MiB of memory, the image needs 256" in message
    assert pick(session, scheduler.request_for(small, image={"min_disk_gib": 1, "min_memory_mib": 128})) == "h1"
    assert pick(session, scheduler.request_for(flavor_named(session, "medium"), image={"min_disk_gib": 2})) == "h1"


def test_allocation_ratios_apply_to_cpu_memory_and_disk(session):
    heartbeat(session, "h1", vcpus=2, memory_mib=1000, disk_gib=10)
    eight_cpus = Request(flavor="eight", vcpus=8, memory_mib=100, disk_gib=1)
    assert pick(session, eight_cpus) == "h1"   # CPU 4.0 (Nova's default): 2 vCPUs promise 8
    assert "cpu: 1" in refusal(session, eight_cpus, dict(POLICY, cpu_allocation_ratio=2.0))[0]
    big_memory = Request(flavor="m", vcpus=1, memory_mib=1400, disk_gib=1)
    assert "memory: 1" in refusal(session, big_memory)[0]   # memory 1.0 by default
    assert pick(session, big_memory, dict(POLICY, memory_allocation_ratio=1.5)) == "h1"
    big_disk = Request(flavor="d", vcpus=1, memory_mib=100, disk_gib=15)
    assert "disk: 1" in refusal(session, big_disk)[0]
    assert pick(session, big_disk, dict(POLICY, disk_allocation_ratio=2.0)) == "h1"

    # What is allocated counts, against the ratio-applied capacity.
    relaxed = dict(POLICY, memory_allocation_ratio=4.0, disk_allocation_ratio=2.0)
    for _ in range(3):
        placed(session, "large", policy=relaxed)   # 2 vCPUs, 512 MiB, 4 GiB each: 6 of 8 vCPUs, 12 of 20 GiB
    [host] = scheduler.list_hosts(session, dict(POLICY, disk_allocation_ratio=2.0), NOW)
    assert (host["allocated_vcpus"], host["allocated_memory_mib"], host["allocated_disk_gib"]) == (6, 1536, 12)
    assert (host["capacity_vcpus"], host["capacity_memory_mib"], host["capacity_disk_gib"]) == (8.0, 1000.0, 20.0)
    two = Request(flavor="two", vcpus=2, memory_mib=1, disk_gib=1)
    assert "cpu: 0, memory: 1" in refusal(session, two)[0]   # 1536 of 1000 MiB already: memory is over
    assert pick(session, two, relaxed) == "h1"   # 6 + 2 <= 8 vCPUs
    assert "cpu: 1" in refusal(session, Request(flavor="three", vcpus=3, memory_mib=1, disk_gib=1), relaxed)[0]
    assert "disk: 1" in refusal(session, Request(flavor="d9", vcpus=1, memory_mib=1, disk_gib=9), relaxed)[0]


def test_old_overcommit_keys_still_work(session):
    assert scheduler.policy_from_config({})["cpu_allocation_ratio"] == 4.0
    old = scheduler.policy_from_config({"CPU_OVERCOMMIT": "2", "MEMORY_OVERCOMMIT": 3})
    assert (old["cpu_allocation_ratio"], old["memory_allocation_ratio"], old["disk_allocation_ratio"]) == (2.0, 3.0, 1.0)
    new = scheduler.policy_from_config({"CPU_OVERCOMMIT": "2", "CPU_ALLOCATION_RATIO": "16", "MEMORY_OVERCOMMIT": "",
                                        "MEMORY_ALLOCATION_RATIO": None, "DISK_ALLOCATION_RATIO": "1.5",
                                        "PLACEMENT_STRATEGY": "pack", "HOST_STALE_AFTER": 12})
    assert (new["cpu_allocation_ratio"], new["memory_allocation_ratio"], new["disk_allocation_ratio"]) == (16.0, 1.0, 1.5)
    assert new["strategy"] == "pack" and new["host_stale_after"] == 12.0
    with pytest.raises(ValueError):
        scheduler.policy_from_config({"PLACEMENT_STRATEGY": "packed"})
    # The tests' POLICY (old keys) is read the same way.
    heartbeat(session, "h1", vcpus=1, memory_mib=4096)
    assert pick(session, Request(flavor="x", vcpus=4, memory_mib=1, disk_gib=1)) == "h1"
    assert "cpu: 1" in refusal(session, Request(flavor="x", vcpus=5, memory_mib=1, disk_gib=1))[0]


def test_disabled_draining_and_down_hosts_are_skipped(session):
    heartbeat(session, "h1", memory_mib=8192)   # the most free memory: spread would take it
    heartbeat(session, "h2", memory_mib=1024)
    heartbeat(session, "h3", memory_mib=2048)
    assert pick(session) == "h1"
    scheduler.set_host_state(session, "h1", "draining")
    assert pick(session) == "h3"
    scheduler.set_host_state(session, "h3", "disabled")
    assert pick(session) == "h2"
    heartbeat(session, "h2", memory_mib=1024, at=NOW - dt.timedelta(seconds=31))
    assert "down: 1" in refusal(session)[0]
    heartbeat(session, "h2", memory_mib=1024)
    assert pick(session) == "h2"
    scheduler.set_host_state(session, "h1", "enabled")
    assert pick(session) == "h1"


def test_set_host_state(session):
    host = scheduler.set_host_state(session, "h1", "draining", POLICY, NOW)
    assert host["state"] == "draining" and host["up"] is True
    with pytest.raises(InvalidInput):
        scheduler.set_host_state(session, "h1", "maintenance")
    with pytest.raises(NotFound):
        scheduler.set_host_state(session, "nope", "enabled")
    assert [h["state"] for h in scheduler.list_hosts(session)] == ["draining"]


# ----- weighers --------------------------------------------------------------------------------

def test_spread_takes_the_most_free_memory_then_the_fewest_instances(session):
    heartbeat(session, "h1", memory_mib=1024)
    heartbeat(session, "h2", memory_mib=1024)
    heartbeat(session, "h3", memory_mib=2048)
    hosts = [placed(session, "medium").host for _ in range(6)]   # 256 MiB each
    # h3 (2048) until it has as much free as the others; equal free memory: fewer instances, then the name.
    assert hosts == ["h3", "h3", "h3", "h3", "h1", "h2"]
    assert pick(session) == "h3"   # 1024 - 256 free on h1, h2; 1024 on h3


def test_pack_takes_the_least_free_memory_that_fits(session):
    pack = dict(POLICY, strategy="pack")
    heartbeat(session, "h1", memory_mib=1024)
    heartbeat(session, "h2", memory_mib=512)
    heartbeat(session, "h3", memory_mib=2048)
    hosts = [placed(session, "medium", policy=pack).host for _ in range(4)]
    assert hosts == ["h2", "h2", "h1", "h1"]   # h2 full after two
    assert pick(session, Request(flavor="big", vcpus=1, memory_mib=600, disk_gib=1), pack) == "h3"


# ----- anti-affinity ---------------------------------------------------------------------------

def test_anti_affinity_places_a_group_on_different_hosts(session):
    heartbeat(session, "h1", memory_mib=4096)
    heartbeat(session, "h2", memory_mib=4096)
    heartbeat(session, "h3", memory_mib=4096)
    web = [placed(session, group="web", anti_affinity=True) for _ in range(3)]
    assert sorted(i.host for i in web) == ["h1", "h2", "h3"]
    inst = in_group(session, "web-4", "web")
    request = scheduler.request_for(flavor_named(session, "small"), inst)
    message, fields = refusal(session, request)
    assert message.startswith("every host that could take it holds an instance of group web: 3 hosts; image: 0, "
                              "disabled: 0, down: 0, anti_affinity: 3, cpu: 0")
    assert fields["filter"] == ["anti_affinity"]
    # Once a member is deleted, its host may take the group again.
    freed = web[0]
    lifecycle.request_delete(session, ACTOR, freed.id)
    assert instance_store.move(session, freed.id, "saga:torn_down") == "deleted"
    assert pick(session, request) == freed.host
    # The same group name of another owner is another group; without the flag the group is not avoided.
    assert placed(session, actor=CLASSMATE, group="web", anti_affinity=True).host
    assert placed(session, group="web").host
    assert "anti_affinity: 3" in refusal(session, request)[0]


def in_group(session, name, group):
    """A new instance of ACTOR in `group`, with anti-affinity, as the create request will record it."""
    inst = new_instance(session, name)
    instance_store.update_fields(session, inst.id, ["pending"], placement_group=group, anti_affinity=True)
    session.refresh(inst)   # (columns left NULL at insert are not reloaded by the update)
    return inst


def test_the_create_saga_places_by_the_instances_own_request(session):
    cloud = FakeCloud()
    heartbeat(session, "h2", memory_mib=256)
    first = in_group(session, "a", "db")
    assert saga.run_create(session, first.id, cloud.peers, POLICY, lambda: NOW) == "running"
    second = in_group(session, "b", "db")
    assert saga.run_create(session, second.id, cloud.peers, POLICY, lambda: NOW) == "running"
    session.refresh(first)
    session.refresh(second)
    assert {first.host, second.host} == {"h1", "h2"}
    third = in_group(session, "c", "db")
    assert saga.run_create(session, third.id, cloud.peers, POLICY, lambda: NOW) == "error"
    session.refresh(third)
    assert "the anti_affinity filter removed the last" in third.reason and third.host is None
    assert_counters_match(session)


# ----- the counters ----------------------------------------------------------------------------

def test_instance_memory_not_the_flavors_is_allocated(session):
    inst = placed(session, "small")
    session.execute(update(Instance).where(Instance.id == inst.id).values(memory_mib=200))
    assert scheduler.adjust_allocation(session, inst.id, memory_mib=72)
    session.commit()
    assert scheduler.stored_allocations(session)["h1"] == (1, 200, 1, 1)
    assert_counters_match(session)
    # With the policy, growth beyond the host's capacity is refused and nothing changes.
    assert not scheduler.adjust_allocation(session, inst.id, memory_mib=400, policy=POLICY)
    session.rollback()
    assert scheduler.stored_allocations(session)["h1"] == (1, 200, 1, 1)
    lifecycle.request_delete(session, ACTOR, inst.id)
    assert instance_store.move(session, inst.id, "saga:torn_down") == "deleted"
    assert scheduler.stored_allocations(session)["h1"] == (0, 0, 0, 0)


def test_counters_never_drift_from_the_instance_rows(session):
    """A seeded random run of creates (the saga), every other allowed transition (user requests,
    saga steps, host observations, reconcile), memory changes and deletes, checked against a
    recount after every step."""
    rng = random.Random(20261121)
    cloud = FakeCloud()
    for n, memory in enumerate((1024, 2048, 768), start=2):
        heartbeat(session, f"h{n}", vcpus=2, memory_mib=memory, disk_gib=20)
    live = []
    for step in range(400):
        roll = rng.random()
        if roll < 0.3 or not live:
            inst = new_instance(session, f"vm{step}", rng.choice(["small", "medium", "large"]))
            if rng.random() < 0.3:
                instance_store.update_fields(session, inst.id, ["pending"], placement_group="g", anti_affinity=True)
                session.refresh(inst)
            if rng.random() < 0.8:
                saga.run_create(session, inst.id, cloud.peers, POLICY, lambda: NOW)
            live.append(inst.id)
        elif roll < 0.8:
            instance_id = rng.choice(live)
            current = session.get(Instance, instance_id, populate_existing=True).state
            actions = [a for a in states.ACTIONS if states.target(a, current) and a != "saga:schedule"]
            if actions:
                instance_store.move(session, instance_id, rng.choice(actions))
        elif roll < 0.9:
            instance_id = rng.choice(live)
            inst = session.get(Instance, instance_id, populate_existing=True)
            new_memory = rng.choice([64, 128, 256, 512])
            delta = new_memory - inst.memory_mib
            session.execute(update(Instance).where(Instance.id == instance_id).values(memory_mib=new_memory))
            scheduler.adjust_allocation(session, instance_id, memory_mib=delta)
            session.commit()
        else:
            instance_id = rng.choice(live)
            state = session.get(Instance, instance_id, populate_existing=True).state
            if states.target("delete", state):
                lifecycle.request_delete(session, ACTOR, instance_id)
                saga.run_delete(session, instance_id, cloud.peers, lambda: NOW)
        assert_counters_match(session)
    held = scheduler.counted_allocations(session)
    assert sum(values[3] for values in held.values()) > 5, "the run should leave instances holding resources"
    assert scheduler.recount_allocations(session) == []


def test_recount_and_claims_correct_counters_that_drifted(session):
    heartbeat(session, "h2", memory_mib=512)
    inst = placed(session, "large")   # 512 MiB: h1 or h2 is full
    other = "h2" if inst.host == "h1" else "h1"
    # Something changed the rows behind the counters' back.
    session.execute(update(Host).where(Host.name == inst.host).values(allocated_memory_mib=0, allocated_instances=0))
    session.execute(update(Host).where(Host.name == other).values(allocated_vcpus=7))
    session.commit()
    assert sorted(scheduler.recount_allocations(session)) == sorted([
        (inst.host, (2, 0, 4, 0), (2, 512, 4, 1)), (other, (7, 0, 0, 0), (0, 0, 0, 0))])
    assert_counters_match(session)
    # A claim recounts the host it locks: drifted counters never let a full host take more.
    session.execute(update(Host).where(Host.name == inst.host).values(allocated_memory_mib=0, allocated_instances=0))
    session.commit()
    assert inst.host == "h1"   # first of the two equally free hosts, by name
    assert pick(session, SMALL) == other   # the full host looked empty; its claim found it full
    assert_counters_match(session)   # and corrected it


def test_list_hosts(session):
    heartbeat(session, "h2", vcpus=8, memory_mib=4096, disk_gib=100, at=NOW - dt.timedelta(minutes=5))
    placed(session, "large")
    h1, h2 = scheduler.list_hosts(session, POLICY, NOW)
    assert h1 == {
        "name": "h1", "hypervisor": "TEST", "state": "enabled", "up": True, "last_heartbeat": NOW,
        "vcpus": 4, "memory_mib": 512, "disk_gib": None, "allocated_vcpus": 2, "allocated_memory_mib": 512,
        "allocated_disk_gib": 4, "capacity_vcpus": 16.0, "capacity_memory_mib": 512.0, "capacity_disk_gib": None,
        "instances": 1, "memory_free_mib": None, "load_1m": None, "used_memory_mib": 512, "used_vcpus": 2}
    assert (h2["up"], h2["disk_gib"], h2["capacity_disk_gib"], h2["instances"]) == (False, 100, 100.0, 0)
    # What is used, as the heartbeat said (beside what is allocated).
    heartbeat(session, "h1", vcpus=4, memory_mib=512, memory_free_mib=300, load_1m=0.75)
    assert {k: scheduler.list_hosts(session, POLICY, NOW)[0][k] for k in ("memory_free_mib", "load_1m")} == {
        "memory_free_mib": 300, "load_1m": 0.75}
    heartbeat(session, "h2", vcpus=8, memory_mib=4096)   # a heartbeat without disk_gib keeps the last one
    assert scheduler.list_hosts(session)[1]["disk_gib"] == 100


# ----- two replicas, one place -------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, migrated_database):
    if request.param == "sqlite":
        return migrated_database("services.instances")
    url = request.getfixturevalue("postgres").create_database(f"scheduler_{uuid.uuid4().hex[:8]}")
    upgrade("services.instances", url)
    return url


def race_worker(url, instance_id):
    """One replica placing one instance (run in its own process): reads the candidates, waits so
    that the other replica reads them too, claims, holds the claim a moment, then moves the
    instance to building. Prints {"host": ...} or {"refused": message}."""
    import time
    from sqlalchemy.orm import sessionmaker
    from common.db import make_engine

    real_claim = scheduler.claim

    def slow_claim(*args, **kwargs):
        time.sleep(0.3)   # both replicas have read the candidates by now
        claimed = real_claim(*args, **kwargs)
        if claimed:
            time.sleep(0.3)   # the other replica's claim arrives while this one holds the host
        return claimed
    scheduler.claim = slow_claim
    engine = make_engine(url)
    session = sessionmaker(bind=engine, expire_on_commit=False)()
    session.connection()
    session.commit()
    print("ready", flush=True)
    sys.stdin.readline()
    inst = session.get(Instance, instance_id)
    request = scheduler.request_for(flavor_named(session, "large"), inst)
    try:
        host = scheduler.pick_host(session, request, NOW, POLICY)
        assert instance_store.move(session, instance_id, "saga:schedule", host=host) == "building"
        result = {"host": host}
    except CapacityExhausted as exc:
        result = {"refused": str(exc)}
    session.close()
    engine.dispose()
    print(json.dumps(result), flush=True)


def test_two_replicas_claiming_the_last_room_of_a_host_get_it_once(database_url):
    from sqlalchemy.orm import sessionmaker
    from common.db import make_engine

    engine = make_engine(database_url)
    with sessionmaker(bind=engine, expire_on_commit=False)() as session:
        heartbeat(session, "h1", vcpus=4, memory_mib=512)   # room for one large (512 MiB)
        ids = [new_instance(session, f"race-{n}", "large").id for n in range(2)]
    outputs = race([[sys.executable, "-c", f"from tests.instances.test_scheduler import race_worker; "
                                           f"race_worker({database_url!r}, {instance_id!r})"] for instance_id in ids],
                   REPO)
    results = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    assert sorted(key for r in results for key in r) == ["host", "refused"], results
    assert next(r["host"] for r in results if "host" in r) == "h1"
    refused = next(r["refused"] for r in results if "refused" in r)
    assert "(the memory filter removed the last)" in refused or "taken meanwhile" in refused, refused
    with sessionmaker(bind=engine)() as session:
        assert sorted(session.scalars(sa.select(Instance.state).where(Instance.id.in_(ids)))) == ["building", "pending"]
        assert_counters_match(session)
        assert scheduler.stored_allocations(session)["h1"] == (2, 512, 4, 1)
    engine.dispose()


# ----- migration -------------------------------------------------------------------------------

def test_migration_0006_counts_what_existing_instances_hold(database_url_before_0006):
    url = database_url_before_0006
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO hosts (name, hypervisor, vcpus, memory_mib, state) "
                             "VALUES ('h1', 'QEMU', 8, 4096, 'enabled'), ('h2', 'QEMU', 8, 4096, 'enabled')"))
        for name, flavor_id, memory, state, host in (("a", 1, 128, "running", "h1"), ("b", 3, 700, "stopped", "h1"),
                                                     ("c", 2, 256, "deleted", "h1"), ("d", 2, 256, "pending", None)):
            conn.execute(sa.text(
                "INSERT INTO instances (id, name, user_id, project_id, flavor_id, image_id, state, host, cpu_weight, "
                "cpu_cap, memory_mib, bandwidth_in_kib, bandwidth_out_kib) "
                "VALUES (:id, :name, 7, 7, :flavor, 1, :state, :host, 256, 0, :memory, 0, 0)"),
                {"id": str(uuid.uuid4()), "name": name, "flavor": flavor_id, "state": state, "host": host,
                 "memory": memory})
    upgrade("services.instances", url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, disk_gib, allocated_vcpus, allocated_memory_mib, allocated_disk_gib, "
                                    "allocated_instances FROM hosts ORDER BY name")).all()
        assert [tuple(r) for r in rows] == [("h1", None, 3, 828, 5, 2), ("h2", None, 0, 0, 0, 0)]
        assert conn.execute(sa.text("SELECT DISTINCT anti_affinity FROM instances")).scalars().all() in ([False], [0])
        indexes = ("SELECT name FROM sqlite_master WHERE type = 'index'" if conn.dialect.name == "sqlite" else
                   "SELECT indexname FROM pg_indexes")
        assert {"ix_hosts_free_memory", "ix_instances_placement_group"} <= set(conn.execute(sa.text(indexes)).scalars())
    command.downgrade(alembic_config("services.instances", url), "0005")
    with engine.connect() as conn:
        assert "allocated_vcpus" not in {c["name"] for c in sa.inspect(conn).get_columns("hosts")}
        assert "placement_group" not in {c["name"] for c in sa.inspect(conn).get_columns("instances")}
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url_before_0006(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/instances.sqlite"
    else:
        url = request.getfixturevalue("postgres").create_database(f"instances_{uuid.uuid4().hex[:8]}")
    upgrade("services.instances", url, "0005")
    return url
