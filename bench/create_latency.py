"""Create-to-running latency through the REST API on libvirt's test driver.

Starts a whole stack (private RabbitMQ node, every service as a process, one host agent on
test:///default) unless --url is given, signs up and approves a user, then creates N instances,
C at a time, each POST followed by polling GET until the instance is running. Prints p50/p95
create-to-running latency and instances/s, then deletes everything and checks nothing is left on
the host.

Baseline, in the same run and on the same stack: the host-side work of one create done directly
over RPC to the host agent, sequentially (create_volume over the image, create_domain, then
destroy_domain and delete_volume): the floor that the control plane adds to.

    .venv/bin/python bench/create_latency.py [-n 50] [-c 10]
    .venv/bin/python bench/create_latency.py -n 40 -c 1      # sequential: the issue's figure
"""
import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from imagebuilder.bareboot import generate_ed25519_key, public_key_line  # noqa: E402
from bench.machine import describe_machine  # noqa: E402
from labcloud.rabbit import free_port  # noqa: E402
from labcloud.stack import Stack  # noqa: E402
from tests.e2e.api import Api  # noqa: E402

ADMIN_PASSWORD = "bench-admin-password"


def percentile(values, pct):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def prepare_user(base_url):
    anon = Api(base_url)
    admin = anon.login("admin", ADMIN_PASSWORD)
    name = f"bench{int(time.time()) % 100000}"
    user = anon.call("POST", "/users", 201, json={"username": name, "email": f"{name}@bench.example",
                                                 "password": "bench-password"}).json()
    project = admin.call("POST", "/projects", 201, json={"name": name, "quota": {
        "instances": None, "vcpus": None, "memory_mib": None}}).json()  # the bench's own, unlimited
    admin.call("POST", f"/users/{user['id']}/approve", 200, json={"project": project["id"]})
    api = anon.login(name, "bench-password")
    key = api.call("POST", "/keys", 201, json={"name": "bench",
                                               "public_key": public_key_line(generate_ed25519_key())}).json()
    flavor = min(api.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    image = api.call("GET", "/images", 200).json()[0]
    return api, {"flavor": flavor["id"], "image": image["id"], "key": key["id"]}


POLL_INTERVAL = 0.02  # each poll is two RPCs (authenticate, get_instance): poll harder and it loads the stack


def server_latency(instance):
    """running_at - created_at as the instances service recorded them: no polling error."""
    created = dt.datetime.fromisoformat(instance["created_at"])
    running = dt.datetime.fromisoformat(instance["running_at"])
    return (running - created).total_seconds()


def create_one(api, body, index):
    started = time.perf_counter()
    inst = api.call("POST", "/instances", 202, json=dict(body, name=f"bench-{index}")).json()
    while True:
        inst = api.call("GET", f"/instances/{inst['id']}", 200).json()
        if inst["state"] in ("running", "error"):
            observed = time.perf_counter() - started
            server = server_latency(inst) if inst["state"] == "running" else None
            return inst["id"], inst["state"], observed, server
        time.sleep(POLL_INTERVAL)


def host_floor(amqp_uri, count, host="host1"):
    """Seconds per create of the host agent's own work, called directly (no labcloud services)."""
    import uuid
    from nameko.standalone.rpc import ClusterRpcProxy
    durations = []
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30) as rpc:
        agent = rpc[f"hostagent_{host}"]
        image = agent.ensure_image({"image_id": 1, "format": "qcow2", "capacity_bytes": 64 << 20})
        for index in range(count):
            instance_id = str(uuid.uuid4())
            started = time.perf_counter()
            volume = agent.create_volume({"name": f"root-{instance_id}.qcow2", "capacity_bytes": 1 << 30,
                                          "format": "qcow2", "backing_path": image["path"]})
            agent.create_domain({"instance_id": instance_id, "name": f"lc-{instance_id}", "vcpus": 1,
                                 "memory_mib": 128, "cpu_weight": 256, "cpu_cap": 0,
                                 "disk_path": volume["path"], "mac": "aa:00:0a:63:09:01", "ip": "10.99.9.1"})
            durations.append(time.perf_counter() - started)
            agent.destroy_domain({"instance_id": instance_id})
            agent.delete_volume({"name": volume["name"]})
    return durations


def report(label, values):
    print(f"{label}: p50 {statistics.median(values) * 1000:.0f} ms, "
          f"p95 {percentile(values, 95) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms")


def left_on_host(amqp_uri, host="host1"):
    from nameko.standalone.rpc import ClusterRpcProxy
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30) as rpc:
        inventory = rpc[f"hostagent_{host}"].get_inventory()
    return [d["instance_id"] for d in inventory["domains"]] + [
        v["name"] for v in inventory["volumes"] if v["name"].startswith("root-")]


def run(base_url, count, concurrency, amqp_uri=None):
    api, body = prepare_user(base_url)
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda i: create_one(Api(base_url, api.http.headers["Authorization"][7:]),
                                                     body, i), range(count)))
    wall = time.perf_counter() - started
    observed = [r[2] for r in results if r[1] == "running"]
    server = [r[3] for r in results if r[1] == "running"]
    failed = [r for r in results if r[1] != "running"]
    print(f"machine: {describe_machine()}; hypervisor: test:///default; {count} instances, {concurrency} at a time")
    print(f"running: {len(observed)}  failed: {len(failed)}")
    for label, values in (("client (POST to first GET seeing running, 20 ms polls)", observed),
                          ("server (created_at to running_at)", server)):
        if values:
            report(f"create-to-running, {label}", values)
    print(f"throughput: {count / wall:.1f} instances/s ({wall:.1f} s wall)")
    for instance_id, *_ in results:
        api.call("DELETE", f"/instances/{instance_id}")
    for instance_id, *_ in results:
        api.wait_for(f"/instances/{instance_id}", lambda r: r.status_code == 404)
    left = api.call("GET", "/instances", 200).json()
    on_host = left_on_host(amqp_uri) if amqp_uri else []
    print(f"after delete: {len(left)} instances left, {len(on_host)} domains/disks left on the host")
    if amqp_uri:
        floor = host_floor(amqp_uri, max(count, 20))
        report("baseline, the host agent's own work per create (volume + domain, direct RPC, sequential)", floor)
        if server:
            print(f"control plane above the baseline (server p50 - baseline p50): "
                  f"{(statistics.median(server) - statistics.median(floor)) * 1000:.0f} ms")
    return 1 if failed or left or on_host else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--count", type=int, default=50)
    parser.add_argument("-c", "--concurrency", type=int, default=10)
    parser.add_argument("--url", help="an already running labcloud (admin password from LABCLOUD_ADMIN_PASSWORD)")
    args = parser.parse_args()
    if args.url:
        global ADMIN_PASSWORD
        ADMIN_PASSWORD = os.environ["LABCLOUD_ADMIN_PASSWORD"]
        return run(args.url, args.count, args.concurrency)
    # The test driver's fake host reports 3 GiB; let it hold all N small instances at once.
    with Stack(tempfile.mkdtemp(prefix="labcloud-bench-"), port=free_port(), admin_password=ADMIN_PASSWORD,
               extra_env={"MEMORY_OVERCOMMIT": "4"}, quiet=True) as stack:
        return run(stack.url, args.count, args.concurrency, stack.amqp_uri)


if __name__ == "__main__":
    sys.exit(main())
