"""Placement at scale: one decision among 10,000 hosts, in a temporary SQLite database.

Builds the instances database by its migrations, then H hosts (sizes mixed, a tenth of them small
ones that fill up; some disabled, draining or down; some without a reported disk size) and I
instances spread over them (most in states that hold host resources, some deleted), and sets the
allocation counters from them. Then times D decisions of scheduler.pick_host: the query that
filters and weighs (walking index ix_hosts_free_memory) and the claim of the chosen host (lock,
recount of that host, fit). Each is followed by the instance's move to `building`, not timed, so
the counters change as they would. Then pack, anti-affinity, and refusals (the slow path that
counts what each filter removed).

Baseline, in the same run on the same database: the scheduler as it was before this change (every
enabled host loaded as an ORM row, usage summed from the instance rows at each decision, the best
host picked in Python), reimplemented here.

The machine's load average is printed with the figures: on a busy machine the p95 grows.
Exit status 1 when the p95 of one decision is above 5 ms.

    .venv/bin/python bench/scheduler.py [--hosts 10000] [--instances 20000] [-n 500]
"""
import argparse
import datetime as dt
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import func, insert, select, update  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from bench.machine import describe_machine  # noqa: E402
from common.db import make_engine  # noqa: E402
from common.errors import CapacityExhausted  # noqa: E402
from common.migrate import upgrade  # noqa: E402
from services.instances import instance_store, scheduler, states  # noqa: E402
from services.instances.models import Flavor, Host, Instance  # noqa: E402

NOW = dt.datetime(2026, 11, 21, 12, 0, 0)
POLICY = scheduler.policy_from_config({})
HELD = list(states.HOLDS_HOST_RESOURCES)


def percentile(values, pct):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def report(label, seconds, cpu=None):
    print(f"{label}: median {statistics.median(seconds) * 1000:.2f} ms, "
          f"p95 {percentile(seconds, 95) * 1000:.2f} ms, max {max(seconds) * 1000:.2f} ms ({len(seconds)} decisions)")
    if cpu:
        print(f"  CPU time of this thread: median {statistics.median(cpu) * 1000:.2f} ms, "
              f"p95 {percentile(cpu, 95) * 1000:.2f} ms (wall above it: waiting for a core)")


def build(session, hosts, instances, rng):
    flavors = session.scalars(select(Flavor).order_by(Flavor.id)).all()
    rows = []
    for n in range(hosts):
        roll = rng.random()
        state = "disabled" if roll < 0.02 else "draining" if roll < 0.03 else "enabled"
        heard = NOW - dt.timedelta(seconds=300 if rng.random() < 0.02 else rng.randint(0, 10))
        small = rng.random() < 0.1   # a tenth are small hosts that fill up
        rows.append({"name": f"host{n:05d}", "hypervisor": "QEMU", "state": state, "last_heartbeat": heard,
                     "vcpus": rng.choice([2, 4] if small else [8, 16, 32, 64]),
                     "memory_mib": rng.choice([512, 1024] if small else [8192, 16384, 65536, 262144]),
                     "disk_gib": None if rng.random() < 0.05 else rng.choice([20, 100, 500, 2000])})
    session.execute(insert(Host), rows)
    names = [r["name"] for r in rows]
    rows = []
    for n in range(instances):
        flavor = rng.choice(flavors)
        grouped = rng.random() < 0.05   # owner 7's group `web`: anti-affinity has hosts to avoid
        rows.append({"id": str(uuid.uuid4()), "name": f"vm{n}", "user_id": 7 if grouped else rng.randint(8, 2000),
                     "project_id": 1, "flavor_id": flavor.id, "image_id": 1,
                     "state": "deleted" if rng.random() < 0.1 else rng.choice(HELD), "host": rng.choice(names),
                     "cpu_weight": flavor.cpu_weight, "cpu_cap": flavor.cpu_cap_percent,
                     "memory_mib": flavor.memory_mib, "bandwidth_in_kib": 0, "bandwidth_out_kib": 0,
                     "placement_group": "web" if grouped else None})
    session.execute(insert(Instance), rows)
    counted = scheduler.counted_allocations(session)
    session.execute(update(Host), [dict(name=name, **dict(zip(scheduler.COUNTERS, values)))
                                   for name, values in counted.items()])
    session.commit()


def pending(session, flavor, user_id=1, group=None, anti_affinity=False):
    instance = Instance(id=str(uuid.uuid4()), name=f"new-{uuid.uuid4().hex[:8]}", user_id=user_id, project_id=1,
                        flavor_id=flavor.id, image_id=1, state="pending", cpu_weight=flavor.cpu_weight,
                        cpu_cap=flavor.cpu_cap_percent, memory_mib=flavor.memory_mib,
                        placement_group=group, anti_affinity=anti_affinity)
    session.add(instance)
    session.commit()
    return instance


def place(session, flavor, decisions, policy=POLICY, **instance_fields):
    """(wall seconds, CPU seconds) per pick_host; each chosen host is taken by a move to building,
    as the saga does."""
    seconds, cpu = [], []
    for _ in range(decisions):
        instance = pending(session, flavor, **instance_fields)
        request = scheduler.request_for(flavor, instance)
        session.expunge_all()   # a saga's worker starts with an empty session
        started, started_cpu = time.perf_counter(), time.thread_time()
        host = scheduler.pick_host(session, request, NOW, policy)
        seconds.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - started_cpu)
        assert instance_store.move(session, instance.id, "saga:schedule", host=host) == "building"
    return seconds, cpu


def refuse(session, flavor, decisions):
    seconds = []
    for _ in range(decisions):
        started = time.perf_counter()
        try:
            scheduler.pick_host(session, dict(flavor=flavor.name, vcpus=512, memory_mib=1 << 30, disk_gib=1),
                                NOW, POLICY)
        except CapacityExhausted as exc:
            message = str(exc)
        seconds.append(time.perf_counter() - started)
    return seconds, message


# ----- the baseline: pick_host as it was -------------------------------------------------------

def old_host_usage(session):
    rows = session.execute(
        select(Instance.host, func.sum(Flavor.memory_mib), func.sum(Flavor.vcpus))
        .join(Flavor, Flavor.id == Instance.flavor_id)
        .where(Instance.state.in_(states.HOLDS_HOST_RESOURCES), Instance.host.is_not(None))
        .group_by(Instance.host))
    return {host: (memory or 0, vcpus or 0) for host, memory, vcpus in rows}


def old_pick_host(session, flavor, now, policy):
    hosts = session.scalars(select(Host).where(Host.state == "enabled")).all()
    live = [h for h in hosts if scheduler.is_up(h, now, policy)]
    if not live:
        raise CapacityExhausted("no hypervisor host is up")
    usage = old_host_usage(session)
    best, best_free = None, None
    for host in live:
        used_memory, used_vcpus = usage.get(host.name, (0, 0))
        free_memory = host.memory_mib * policy["memory_allocation_ratio"] - used_memory
        free_vcpus = host.vcpus * policy["cpu_allocation_ratio"] - used_vcpus
        if free_memory >= flavor.memory_mib and free_vcpus >= flavor.vcpus:
            if best_free is None or free_memory > best_free:
                best, best_free = host, free_memory
    if best is None:
        raise CapacityExhausted(f"no host has room for flavor {flavor.name}")
    return best.name


def place_old(session, flavor, decisions):
    seconds = []
    for _ in range(decisions):
        instance = pending(session, flavor)
        session.expunge_all()   # a saga's worker starts with an empty session
        started = time.perf_counter()
        host = old_pick_host(session, flavor, NOW, POLICY)
        seconds.append(time.perf_counter() - started)
        assert instance_store.move(session, instance.id, "saga:schedule", host=host) == "building"
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=10000)
    parser.add_argument("--instances", type=int, default=20000)
    parser.add_argument("-n", "--decisions", type=int, default=500)
    parser.add_argument("--baseline-decisions", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="labcloud-bench-scheduler-")
    try:
        url = f"sqlite:///{directory}/instances.sqlite"
        upgrade("services.instances", url)
        engine = make_engine(url)
        session = sessionmaker(bind=engine, expire_on_commit=False)()
        started = time.perf_counter()
        build(session, args.hosts, args.instances, random.Random(args.seed))
        print(f"machine: {describe_machine()}, load average {os.getloadavg()[0]:.1f}; SQLite {sqlite3.sqlite_version} "
              f"(file, WAL); {args.hosts} hosts, {args.instances} instances (built in {time.perf_counter() - started:.1f} s)")
        flavor = session.scalars(select(Flavor).where(Flavor.name == "medium")).one()
        report("pick_host, spread", *place(session, flavor, args.decisions))
        report("pick_host, pack", *place(session, flavor, args.decisions // 2, dict(POLICY, strategy="pack")))
        group_hosts = session.scalar(select(func.count(Instance.host.distinct())).where(
            Instance.user_id == 7, Instance.placement_group == "web", Instance.state.in_(HELD)))
        report(f"pick_host, anti-affinity (the owner's group is on {group_hosts} hosts already)",
               *place(session, flavor, args.decisions // 4, user_id=7, group="web", anti_affinity=True))
        seconds, message = refuse(session, flavor, 10)
        report("refusal (fast query, then the per-filter count)", seconds)
        print(f"  {message}")
        started = time.perf_counter()
        corrected = scheduler.recount_allocations(session)
        print(f"recount_allocations: {len(corrected)} hosts off, {(time.perf_counter() - started) * 1000:.0f} ms")
        baseline = place_old(session, flavor, args.baseline_decisions)
        report("baseline, pick_host as it was (ORM rows of every host, usage summed per decision)", baseline)
        new, new_cpu = place(session, flavor, args.decisions)
        report("pick_host, spread, again after the baseline", new, new_cpu)
        met = percentile(new, 95) <= 0.005
        print(f"speed-up (median): {statistics.median(baseline) / statistics.median(new):.0f}x; "
              f"target, one decision <= 5 ms at p95: {'met' if met else 'NOT met'}; "
              f"load average now {os.getloadavg()[0]:.1f}")
        session.close()
        engine.dispose()
        return 0 if met else 1
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
