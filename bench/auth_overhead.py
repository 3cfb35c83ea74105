"""What the gateway costs: an authenticated `GET /api/v1/instances` over HTTP against the same
list called as a raw nameko RPC (`instances.list_instances(actor)`), from the same number of
client threads, in the same run, on the same stack.

Starts a whole stack on libvirt's test driver (unless --url and --amqp are given), makes a user in
a project with a few instances, then alternates rounds: raw RPC (the baseline), HTTP, raw RPC,
HTTP, ... each for --seconds. Prints calls/s and p50 latency of each round, the median of each
side, and the ratio HTTP/RPC (the issue asks for at least 0.80).

The HTTP clients are the standard library's keep-alive `http.client` connections (one per thread),
the lightest client on the HTTP side as nameko's standalone proxy is on the RPC side: client and
servers share the machine's cores, so a heavy client would be counted against the gateway. The
same list through `requests` (what most scripts use; its client costs about 1.5 ms of CPU per call
here, against 0.4 ms for http.client) is measured too and reported beside it.

    .venv/bin/python bench/auth_overhead.py [--threads 8] [--seconds 10] [--rounds 3]
"""
import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.machine import ADMIN_PASSWORD, add_stack_arguments, describe_machine, on_stack  # noqa: E402
from tests.e2e.api import Api, approved_user, running_instances  # noqa: E402

INSTANCES = 5


def prepare(base_url):
    """A user with INSTANCES running instances; returns (their Api, token)."""
    admin = Api(base_url).login("admin", ADMIN_PASSWORD)
    name = f"auth{int(time.time()) % 100000}"
    user = approved_user(base_url, admin, name)
    running_instances(user, INSTANCES)
    return user


def run_threads(threads, seconds, make_caller):
    """Each thread makes its own caller (a connection), then calls it in a loop for `seconds`.
    Returns (calls per second, p50 latency in ms)."""
    latencies, lock = [], threading.Lock()
    ready = threading.Barrier(threads + 1)
    deadline = [None]

    def work():
        call, close = make_caller()
        try:
            call()  # warm the connection up outside the measurement
            ready.wait()
            mine = []
            while time.perf_counter() < deadline[0]:
                started = time.perf_counter()
                call()
                mine.append(time.perf_counter() - started)
            with lock:
                latencies.extend(mine)
        finally:
            close()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    started = time.perf_counter()
    deadline[0] = started + seconds  # set before the barrier releases anyone
    ready.wait()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, statistics.median(latencies) * 1000


def http_caller(base_url, token):
    host, port = base_url.split("//", 1)[1].rstrip("/").split(":")

    def make():
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {"Authorization": f"Bearer {token}"}

        def call():
            connection.request("GET", "/api/v1/instances", headers=headers)
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200 and len(json.loads(body)) == INSTANCES, body[:200]
        return call, connection.close
    return make


def requests_caller(base_url, token):
    def make():
        api = Api(base_url, token)

        def call():
            response = api.http.get(api.base + "/instances", timeout=30)
            assert response.status_code == 200 and len(response.json()) == INSTANCES, response.text
        return call, api.http.close
    return make


def rpc_caller(amqp_uri, actor):
    from nameko.standalone.rpc import ClusterRpcProxy

    def make():
        proxy = ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30)
        rpc = proxy.start()

        def call():
            assert len(rpc.instances.list_instances(actor)) == INSTANCES
        return call, proxy.stop
    return make


def measure(base_url, amqp_uri, threads, seconds, rounds):
    user = prepare(base_url)
    from nameko.standalone.rpc import ClusterRpcProxy
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30) as rpc:
        actor = rpc.accounts.authenticate(user.token)  # exactly what the gateway passes on
    sides = (("rpc", rpc_caller(amqp_uri, actor)), ("http", http_caller(base_url, user.token)),
             ("requests", requests_caller(base_url, user.token)))
    results = {side: [] for side, _ in sides}
    for side, make in sides:  # warm-up, not counted: first calls fill caches on every side
        run_threads(threads, min(seconds, 3), make)
    for round_number in range(rounds):
        for side, make in sides:
            rate, p50 = run_threads(threads, seconds, make)
            results[side].append((rate, p50))
            print(f"round {round_number + 1} {side:8}: {rate:7.1f} calls/s, p50 {p50:6.2f} ms", flush=True)

    def median(side, index):
        return statistics.median(result[index] for result in results[side])
    print(f"\nmachine: {describe_machine()}; {threads} client threads, {rounds} rounds of {seconds} s each")
    print(f"raw RPC  instances.list_instances:      {median('rpc', 0):7.1f} calls/s,    p50 {median('rpc', 1):.2f} ms")
    print(f"HTTP GET /api/v1/instances (http.client): {median('http', 0):7.1f} requests/s, p50 {median('http', 1):.2f} ms")
    print(f"HTTP GET /api/v1/instances (requests):    {median('requests', 0):7.1f} requests/s, "
          f"p50 {median('requests', 1):.2f} ms")
    ratio = median("http", 0) / median("rpc", 0)
    print(f"gateway keeps {ratio:.0%} of the raw RPC throughput (target: at least 80%); "
          f"through requests {median('requests', 0) / median('rpc', 0):.0%}")
    return ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    add_stack_arguments(parser)
    args = parser.parse_args()
    on_stack(args, lambda url, amqp: measure(url, amqp, args.threads, args.seconds, args.rounds))


if __name__ == "__main__":
    main()
