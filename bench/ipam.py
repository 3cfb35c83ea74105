"""The network service's IP allocator (services/network/ipam.py: free ranges, the lowest free address
taken by one indexed UPDATE) on PostgreSQL and SQLite, against the allocator as it was.

1. Throughput: N allocations (allocate_address, each its own transaction, as the service does)
   from one empty /16 (10.60.0.0/16), by 1 replica and by 3 replicas (OS processes started
   together, each allocating N/3, released at one moment), on each database, every run in a fresh
   database. Checked: no IP and no MAC twice, exactly the lowest N addresses handed out, the
   database holds N addresses and N fewer free ones. The replicas time themselves (after their
   imports and their first connection); the run's time is the first start to the last end.
2. First against last: in one database, an empty /16 (10.61.0.0/16) and an almost full one
   (10.62.0.0/16: 65,532 of its 65,533 addresses filled by bulk inserts of the address rows and of
   its free ranges, computed by ipam.free_ranges, not by allocations; one left, 10.62.255.254).
   Then single allocate_address calls, interleaved (first, last, first, ...), each followed by
   release_address (not timed), so every run takes the same address: median, p95, max.
3. Baseline, in the same run on the same databases: the allocator as it was before this change,
   reimplemented here (every allocated IP of the subnet read into a set, ipaddress's hosts() walked
   to the first free one that is not the gateway, the row inserted), timed for the same first and
   last free address; released by deleting the row (it never touched the free ranges).

PostgreSQL is a private cluster (labcloud.postgres, fsync off as in the tests); SQLite a file in
WAL mode (common.db). The machine's load average is printed with the figures.
Exit status 1 when, on either database, the median time of the last free address of the almost
full /16 is more than 2x that of the first address of the empty /16 (the issue's target: the last
as fast as the first), or when a check fails.

    .venv/bin/python bench/ipam.py [-n 3000] [--runs 50] [--baseline-runs 20] [--databases postgresql,sqlite]
"""
import argparse
import ipaddress
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from sqlalchemy import delete, func, insert, select  # noqa: E402
from sqlalchemy.exc import IntegrityError  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from bench.machine import describe_machine  # noqa: E402
from common.db import make_engine  # noqa: E402
from common.migrate import upgrade  # noqa: E402
from services.network import addresses, ipam, subnets  # noqa: E402
from services.network.models import Address, FreeRange, Subnet  # noqa: E402

THROUGHPUT_CIDR = "10.60.0.0/16"
EMPTY_CIDR = "10.61.0.0/16"
FULL_CIDR = "10.62.0.0/16"
TARGET_RATIO = 2.0


def percentile(values, pct):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def ms(seconds):
    return f"{seconds * 1000:.2f}"


def load():
    return f"{os.getloadavg()[0]:.1f}"


class Databases:
    """Fresh migrated databases of the network service: SQLite files in a temp dir, databases of
    one private PostgreSQL cluster (started on first use)."""

    def __init__(self, directory):
        self.directory = directory
        self.cluster = self.cluster_dir = None
        self.made = 0

    def new(self, kind):
        self.made += 1
        name = f"ipam_{self.made}_{uuid.uuid4().hex[:6]}"
        if kind == "postgresql":
            if self.cluster is None:
                from labcloud.postgres import PostgresCluster
                self.cluster_dir = tempfile.mkdtemp(prefix="labcloud-bench-ipam-pg-")
                self.cluster = PostgresCluster(self.cluster_dir).start()
            url = self.cluster.create_database(name)
        else:
            url = f"sqlite:///{self.directory}/{name}.sqlite"
        upgrade("services.network", url)
        return url

    def describe(self, kind, url):
        if kind == "sqlite":
            return f"SQLite {sqlite3.sqlite_version} (file, WAL, synchronous=NORMAL)"
        engine = make_engine(url)
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar()
        engine.dispose()
        return f"PostgreSQL {version} (private cluster, fsync off)"

    def stop(self):
        if self.cluster is not None:
            self.cluster.stop()
            shutil.rmtree(self.cluster_dir, ignore_errors=True)


def open_session(url):
    engine = make_engine(url)
    return engine, sessionmaker(bind=engine, expire_on_commit=False)()


# ----- 1. throughput: replicas as OS processes ----------------------------------------------------

def worker(url, subnet, prefix, count):
    """One replica (run as `bench/ipam.py --worker URL SUBNET PREFIX COUNT`): prints `ready`, waits
    for `go`, allocates COUNT addresses, prints `span START END` (time.monotonic, one clock for
    every process) and one `owner ip mac DONE` line per address (DONE: when its allocation returned)."""
    engine, session = open_session(url)
    session.execute(select(func.count(Subnet.id)))   # connect before the clock starts
    session.commit()
    print("ready", flush=True)
    sys.stdin.readline()
    started, got = time.monotonic(), []
    for n in range(count):
        got.append((addresses.allocate_address(session, f"{prefix}-{n}", subnet)[0], time.monotonic()))
    print("span", started, got[-1][1] if got else started)
    for address, done in got:
        print(address["owner"], address["ip"], address["mac"], done)
    session.close()
    engine.dispose()
    return 0


def race(url, subnet, replicas, per_replica):
    """Start the replicas, release them together; (seconds from the first start to the last end,
    [(owner, ip, mac)], [seconds of each replica], (alloc/s of the first tenth, of the last tenth))."""
    argvs = [[sys.executable, os.path.abspath(__file__), "--worker", url, subnet, f"r{n}", str(per_replica)]
             for n in range(replicas)]
    workers = [subprocess.Popen(argv, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for argv in argvs]
    for process in workers:
        line = process.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"a replica did not start: {line!r} {process.stderr.read()}")
    for process in workers:
        process.stdin.write("go\n")
        process.stdin.flush()
    spans, rows = [], []
    for process in workers:
        out, err = process.communicate(timeout=1800)
        if process.returncode != 0:
            raise RuntimeError(f"a replica failed: {err}")
        for line in out.splitlines():
            fields = line.split()
            if fields[0] == "span":
                spans.append((float(fields[1]), float(fields[2])))
            else:
                rows.append(tuple(fields))
    first = min(start for start, _ in spans)
    wall = max(end for _, end in spans) - first
    # Allocations per second over the first and the last tenth of all completions (all replicas):
    # does the rate fall as the range is used up (dead row versions, longer scans)?
    done = sorted(float(row[3]) for row in rows)
    tenth = max(1, len(done) // 10)
    edges = (tenth / (done[tenth - 1] - first), tenth / (done[-1] - done[-tenth - 1])) if len(done) > tenth else (0, 0)
    return wall, [row[:3] for row in rows], [end - start for start, end in spans], edges


def throughput(databases, kind, total, replicas):
    url = databases.new(kind)
    engine, session = open_session(url)
    made = subnets.create_subnet(session, {"name": "bench", "cidr": THROUGHPUT_CIDR})
    per_replica = total // replicas
    wall, rows, each, edges = race(url, "bench", replicas, per_replica)
    ips, macs = [ip for _, ip, _ in rows], [mac for *_, mac in rows]
    first = ipaddress.IPv4Address(made["gateway"]) + 1
    problems = []
    if len(rows) != replicas * per_replica:
        problems.append(f"{len(rows)} addresses, not {replicas * per_replica}")
    if len(set(ips)) != len(ips) or len(set(macs)) != len(macs):
        problems.append(f"duplicates: {len(ips) - len(set(ips))} IPs, {len(macs) - len(set(macs))} MACs")
    if sorted(ips, key=ipaddress.IPv4Address) != [str(first + n) for n in range(len(ips))]:
        problems.append("not the lowest addresses")
    summary = subnets.summary(session, subnets.get(session, made["id"]))
    if summary["allocated"] != len(rows) or summary["free"] != made["free"] - len(rows):
        problems.append(f"database: {summary['allocated']} allocated, {summary['free']} free "
                        f"(expected {len(rows)}, {made['free'] - len(rows)})")
    ranges = session.scalar(select(func.count(FreeRange.id)).where(FreeRange.subnet_id == made["id"]))
    session.close()
    engine.dispose()
    return dict(kind=kind, replicas=replicas, count=len(rows), wall=wall, rate=len(rows) / wall, each=each, edges=edges,
                duplicates=len(ips) - len(set(ips)), problems=problems, ranges=ranges)


# ----- 2. and 3.: the first free address against the last ----------------------------------------

def fill(session, subnet_id, cidr, leave):
    """Every address of the subnet's allocation range but the `leave` last allocated, by bulk
    inserts: the address rows, then the free ranges ipam.free_ranges computes for what is left."""
    subnet = session.get(Subnet, subnet_id)
    start = ipam.to_int(subnet.allocation_start)
    end = ipam.to_int(subnet.allocation_end)
    gateway = ipam.to_int(subnet.gateway)
    values = [v for v in range(start, end + 1) if v != gateway][:-leave]
    prefix = cidr.split(".")[1]
    for chunk in range(0, len(values), 10000):
        session.execute(insert(Address), [
            {"subnet_id": subnet_id, "ip": ipam.to_ip(v), "mac": addresses.mac_for_ip(ipam.to_ip(v)),
             "owner": f"fill{prefix}-{v}"} for v in values[chunk:chunk + 10000]])
    session.execute(delete(FreeRange).where(FreeRange.subnet_id == subnet_id))
    ipam.add_ranges(session, subnet_id, ipam.free_ranges(start, end, [gateway] + values))
    session.commit()
    return len(values)


def old_allocate(session, owner, subnet_name):
    """allocate_address as it was (its first attempt: the lowest free address): every allocated
    IP of the subnet read into a set, hosts() walked to the first free one, the row inserted."""
    subnet = session.scalars(select(Subnet).where(Subnet.name == subnet_name)).one()
    used = set(session.scalars(select(Address.ip).where(Address.subnet_id == subnet.id)))
    reserved = used | {subnet.gateway}
    ip = next((str(h) for h in ipaddress.IPv4Network(subnet.cidr).hosts() if str(h) not in reserved), None)
    if ip is None:
        raise RuntimeError(f"{subnet_name} is full")
    session.add(Address(subnet_id=subnet.id, ip=ip, mac=addresses.mac_for_ip(ip), owner=owner))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise
    return ip


def old_release(session, owner):
    session.execute(delete(Address).where(Address.owner == owner))
    session.commit()


def first_and_last(databases, kind, runs, baseline_runs):
    url = databases.new(kind)
    engine, session = open_session(url)
    subnets.create_subnet(session, {"name": "empty", "cidr": EMPTY_CIDR})
    full = subnets.create_subnet(session, {"name": "full", "cidr": FULL_CIDR})
    started = time.perf_counter()
    filled = fill(session, full["id"], FULL_CIDR, leave=1)
    fill_seconds = time.perf_counter() - started
    full = subnets.summary(session, subnets.get(session, full["id"]))
    expected = {"empty": "10.61.0.2", "full": "10.62.255.254"}
    assert full["free"] == 1 and full["allocated"] == filled, full

    def timed(allocate, release, subnet_name, n):
        owner = f"timed-{subnet_name}-{n}"
        session.expunge_all()   # a worker starts with an empty session
        begun = time.perf_counter()
        ip = allocate(session, owner, subnet_name)
        seconds = time.perf_counter() - begun
        if ip != expected[subnet_name]:
            raise AssertionError(f"{subnet_name}: got {ip}, expected {expected[subnet_name]}")
        release(session, owner)
        return seconds

    def new_allocate(session, owner, subnet_name):
        return addresses.allocate_address(session, owner, subnet_name)[0]["ip"]

    result = {"kind": kind, "filled": filled, "fill_seconds": fill_seconds}
    for label, allocate, release, n in (("new", new_allocate, addresses.release_address, runs),
                                        ("old", old_allocate, old_release, baseline_runs)):
        first, last = [], []
        timed(allocate, release, "empty", -1)   # warm-up, not counted
        timed(allocate, release, "full", -1)
        for i in range(n):
            first.append(timed(allocate, release, "empty", i))
            last.append(timed(allocate, release, "full", i))
        result[label] = (first, last)
    # The free ranges are as they were: one address left in the full /16, the empty one whole.
    left = subnets.summary(session, subnets.get(session, full["id"]))
    assert (left["free"], left["allocated"]) == (1, filled), left
    result["ranges"] = session.scalar(select(func.count(FreeRange.id)))
    session.close()
    engine.dispose()
    return result


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, subnet, prefix, count = sys.argv[2:6]
        return worker(url, subnet, prefix, int(count))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--allocations", type=int, default=3000,
                        help="allocations of each throughput run (3 replicas: a third each)")
    parser.add_argument("--runs", type=int, default=50, help="timed single allocations, first and last each")
    parser.add_argument("--baseline-runs", type=int, default=20)
    parser.add_argument("--databases", default="postgresql,sqlite")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    directory = tempfile.mkdtemp(prefix="labcloud-bench-ipam-")
    databases = Databases(directory)
    failed = []
    try:
        versions = {kind: databases.describe(kind, databases.new(kind) if kind == "postgresql" else None)
                    for kind in kinds}
        print(f"machine: {describe_machine()}, load average {load()}; " + "; ".join(versions.values()))

        print(f"\n1. Throughput: {args.allocations} allocations from one empty /16 ({THROUGHPUT_CIDR}), "
              "allocate_address per address, replicas as OS processes released together")
        print(f"{'database':<11} {'replicas':>8} {'addresses':>9} {'seconds':>8} {'alloc/s':>8} "
              f"{'1st/last 10%':>12} {'per replica (s)':<18} {'dupl.':>5}  checks")
        rates = {}
        for kind in kinds:
            for replicas in (1, 3):
                r = throughput(databases, kind, args.allocations, replicas)
                rates[kind, replicas] = r["rate"]
                each = ", ".join(f"{s:.1f}" for s in r["each"])
                edges = f"{r['edges'][0]:.0f}/{r['edges'][1]:.0f}"
                print(f"{kind:<11} {replicas:>8} {r['count']:>9} {r['wall']:>8.2f} {r['rate']:>8.0f} "
                      f"{edges:>12} {each:<18} {r['duplicates']:>5}  {'; '.join(r['problems']) or 'ok'} "
                      f"(free ranges left: {r['ranges']}; load {load()})")
                failed += [f"{kind}, {replicas} replicas: {p}" for p in r["problems"]]
        for kind in kinds:
            print(f"  {kind}: 3 replicas / 1 replica = {rates[kind, 3] / rates[kind, 1]:.2f}x")

        print(f"\n2./3. One allocation: the first free address of an empty /16 ({EMPTY_CIDR}) against the last "
              f"free address of an almost full /16 ({FULL_CIDR}), ms (median, p95, max); "
              f"{args.runs} runs each (baseline {args.baseline_runs}), interleaved, released between runs")
        print(f"{'database':<11} {'allocator':<26} {'first free (empty /16)':>24} {'last free (full /16)':>24} "
              f"{'last/first':>10}")
        results = []
        for kind in kinds:
            r = first_and_last(databases, kind, args.runs, args.baseline_runs)
            results.append(r)
            for label, name in (("new", "free ranges (this change)"), ("old", "baseline: set + hosts()")):
                first, last = r[label]
                cells = [f"{ms(statistics.median(x))}, {ms(percentile(x, 95))}, {ms(max(x))}" for x in (first, last)]
                print(f"{kind:<11} {name:<26} {cells[0]:>24} {cells[1]:>24} "
                      f"{statistics.median(last) / statistics.median(first):>9.2f}x")
            print(f"{'':<11} (filled {r['filled']} addresses by bulk insert in {r['fill_seconds']:.1f} s; "
                  f"free-range rows at the end: {r['ranges']}; load {load()})")

        print()
        for r in results:
            new_first, new_last = (statistics.median(x) for x in r["new"])
            old_first, old_last = (statistics.median(x) for x in r["old"])
            ratio = new_last / new_first
            met = ratio <= TARGET_RATIO
            print(f"{r['kind']}: last free address of the full /16 {ms(new_last)} ms vs first of the empty /16 "
                  f"{ms(new_first)} ms: {ratio:.2f}x (target <= {TARGET_RATIO:.0f}x: {'met' if met else 'NOT met'}); "
                  f"baseline {ms(old_last)} ms vs {ms(old_first)} ms ({old_last / old_first:.0f}x); "
                  f"last free address {old_last / new_last:.0f}x faster than the baseline")
            if not met:
                failed.append(f"{r['kind']}: last/first {ratio:.2f}x > {TARGET_RATIO:.0f}x")
        print(f"load average now {load()}")
        if failed:
            print("FAILED: " + "; ".join(failed))
        return 1 if failed else 0
    finally:
        databases.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
