"""How long a host takes to apply its whole security-group and floating-IP rule set
(hostagent/netfilter.py: one nft transaction replacing table `ip labcloud`, plus the floating IPs'
local routes), by the number of guests on the host, in a network namespace of its own.

Each guest has the default group (SSH in from anywhere, everything out) plus a remote-group rule
naming every guest of its course (courses of 20), and every tenth one a floating IP. Measured:
render (Python) and apply (nft -f and the routes), median and max of --runs pushes, for 10, 100
and 500 guests. Baseline in the same run: applying an empty rule set (what a push costs with no
guest: the subprocesses alone).

    .venv/bin/python bench/network_rules.py [--runs 10] [--sizes 10,100,500]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.machine import describe_machine  # noqa: E402
from common import netns  # noqa: E402
from hostagent import netfilter  # noqa: E402

COURSE = 20


def ruleset(guests):
    ips = [f"10.{100 + n // 65536}.{n // 256 % 256}.{n % 256 + 1 if n % 256 < 254 else 1}" for n in range(guests)]
    ports = []
    for n, ip in enumerate(ips):
        course = ips[n // COURSE * COURSE:(n // COURSE + 1) * COURSE]
        ports.append({"ip": ip, "ingress": [
            {"protocol": "tcp", "port_min": 22, "port_max": 22, "peers": ["0.0.0.0/0"]},
            {"protocol": "tcp", "port_min": 80, "port_max": 81, "peers": [f"{p}/32" for p in course]}],
            "egress": [{"protocol": "any", "port_min": None, "port_max": None, "peers": ["0.0.0.0/0"]}]})
    floating = [{"floating_ip": f"198.51.{100 + n // 2540}.{n // 10 % 254 + 1}", "fixed_ip": ip, "subnet": "10.100.0.0/16"}
                for n, ip in enumerate(ips) if n % 10 == 0]
    return {"ports": ports, "floating": floating}


def timed(runs, step):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        step()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--sizes", default="10,100,500")
    args = parser.parse_args()
    print(describe_machine())
    name = f"lcbench-{uuid.uuid4().hex[:6]}"
    netns.create(name)
    try:
        empty = {"ports": [], "floating": []}
        base = timed(args.runs, lambda: netfilter.apply(name, empty))
        print(f"baseline (an empty rule set): apply median {base[0]:.1f} ms, max {base[1]:.1f} ms")
        for size in (int(s) for s in args.sizes.split(",")):
            wanted = ruleset(size)
            render = timed(args.runs, lambda: netfilter.render(wanted))
            apply = timed(args.runs, lambda: netfilter.apply(name, wanted))
            rules = len(subprocess.run(netns.nsenter_argv(name) + ["nft", "-a", "list", "table", "ip", netfilter.TABLE],
                                       capture_output=True, text=True, check=True).stdout.splitlines())
            print(f"{size:4d} guests ({len(wanted['floating'])} floating IPs, {rules} lines of table): "
                  f"render median {render[0]:.1f} ms; apply median {apply[0]:.1f} ms, max {apply[1]:.1f} ms "
                  f"({apply[0] / base[0]:.1f}x the empty push)")
            netfilter.apply(name, empty)
    finally:
        netns.delete(name)


if __name__ == "__main__":
    main()
