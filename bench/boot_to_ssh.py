"""Boot-to-SSH of the tiny image: (a) bare qemu-system-x86_64, (b) through the labcloud API.

(a) starts QEMU directly (TCG, user-mode networking with a port forward, a local metadata server)
    and times QEMU start -> logged-in SSH session (imagebuilder.bareboot).
(b) runs the whole stack with one real QEMU host (private libvirtd in a network namespace) and
    times POST /api/v1/instances -> logged-in SSH session through the instance's ssh endpoint.
Both log in as root with the same key, several times each, interleaved. Prints both medians and
their ratio (target: b <= 1.15 x a).

    .venv/bin/python bench/boot_to_ssh.py [-n 5]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from imagebuilder.bareboot import boot_and_ssh, generate_ed25519_key, public_key_line, wait_for_ssh  # noqa: E402
from bench.machine import describe_machine  # noqa: E402
from labcloud.rabbit import free_port  # noqa: E402
from labcloud.stack import Stack  # noqa: E402
from tests.e2e.api import Api  # noqa: E402

ADMIN_PASSWORD = "bench-admin-password"
IMAGE_CACHE = os.path.join(tempfile.gettempdir(), "labcloud-debcache")


def labcloud_boot(api, body, key, index):
    started = time.monotonic()
    inst = api.call("POST", "/instances", 202, json=dict(body, name=f"boot-{index}")).json()
    while True:
        inst = api.call("GET", f"/instances/{inst['id']}", 200).json()
        if inst["state"] == "error":
            raise RuntimeError(f"instance failed: {inst['reason']}")
        if inst["state"] == "running" and inst.get("ssh"):
            break
        time.sleep(0.05)
    # The same login as the bare side's: poll for the banner, then log in with paramiko.
    wait_for_ssh(inst["ssh"]["port"], key, started + 180, host=inst["ssh"]["host"]).close()
    seconds = time.monotonic() - started
    api.call("DELETE", f"/instances/{inst['id']}", 202)
    api.wait_for(f"/instances/{inst['id']}", lambda r: r.status_code == 404, timeout=60)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=5)
    args = parser.parse_args()
    key = generate_ed25519_key()
    bare, through = [], []
    with Stack(tempfile.mkdtemp(prefix="labcloud-bootbench-"), port=free_port(), hypervisor="qemu",
               admin_password=ADMIN_PASSWORD, image_cache_dir=IMAGE_CACHE, quiet=True) as stack:
        image_dir = os.path.join(stack.data_dir, "images", "tiny")
        anon = Api(stack.url)
        admin = anon.login("admin", ADMIN_PASSWORD)
        registered = admin.call("POST", "/keys", 201, json={
            "name": "bench", "public_key": public_key_line(key)}).json()
        # One vCPU, not throttled: the bare QEMU side runs uncapped, so a flavor with a CPU cap
        # below 100% (the `small` flavor's 50%) would compare a half-speed guest with a full one.
        flavor = min((f for f in admin.call("GET", "/flavors", 200).json()
                      if f["vcpus"] == 1 and f["cpu_cap_percent"] in (0, 100)), key=lambda f: f["memory_mib"])
        image = next(i for i in admin.call("GET", "/images", 200).json() if i["name"] == "tiny")
        body = {"flavor": flavor["id"], "image": image["id"], "key": registered["id"]}
        for run in range(args.runs):  # interleaved, so drift on the machine hits both alike
            bare.append(boot_and_ssh(image_dir, key, memory_mib=flavor["memory_mib"]))
            through.append(labcloud_boot(admin, body, key, run))
            print(f"run {run + 1}: bare {bare[-1]:.2f} s, labcloud {through[-1]:.2f} s", flush=True)
    a, b = statistics.median(bare), statistics.median(through)
    print(f"machine: {describe_machine()}; QEMU TCG; tiny image; flavor {flavor['name']}: 1 vCPU, "
          f"{flavor['memory_mib']} MiB; {args.runs} runs each")
    print(f"(a) bare qemu-system-x86_64 boot-to-SSH median: {a:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in bare)})")
    print(f"(b) labcloud API boot-to-SSH median:           {b:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in through)})")
    print(f"ratio b/a: {b / a:.3f} (target <= 1.15)")
    return 0 if b <= 1.15 * a else 1


if __name__ == "__main__":
    sys.exit(main())
