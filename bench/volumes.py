"""Data volumes on a real QEMU guest, end to end through the REST API, against libvirt alone as the
baseline, measured in the same run.

Starts a stack with one real QEMU host (a private libvirtd in a network namespace), creates one
guest of the tiny image with a key, waits for SSH and keeps one SSH session open into it. Then,
interleaved so drift on the machine hits both alike:
- labcloud run i: POST /volumes {size_gib 1, instance} (create: the qcow2 made on the guest's host)
  -> POST /volumes/{id}/attach (the API's answer: libvirt attached it LIVE and CONFIG) -> the guest
  lists /sys/block/vdb (polled over the open session) -> POST /detach -> vdb gone in the guest ->
  DELETE.
- baseline i: the same disk work with libvirt alone on the host's daemon: createXML of a 1 GiB
  qcow2 in the pool, attachDeviceFlags(LIVE|CONFIG) -> vdb in the guest -> detachDeviceFlags ->
  gone -> delete: what labcloud costs on top (RPC, database, checks) is the difference.
- floors: one GET /volumes/{id} (the API's round trip) and one `ls /sys/block` over the session (the
  poll's own round trip, the resolution of "seen in the guest").

    .venv/bin/python bench/volumes.py [-n 5]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import libvirt  # noqa: E402
import paramiko  # noqa: E402

from bench.machine import machine_and_load  # noqa: E402
from hostagent import volume_devices  # noqa: E402
from imagebuilder.bareboot import generate_ed25519_key, public_key_line  # noqa: E402
from labcloud.rabbit import free_port  # noqa: E402
from labcloud.stack import Stack  # noqa: E402
from tests.e2e.api import Api  # noqa: E402

ADMIN_PASSWORD = "bench-admin-password"
IMAGE_CACHE = os.path.join(tempfile.gettempdir(), "labcloud-debcache")
TIMEOUT_S = 240
GIB = 1 << 30


def connect(inst, key):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(inst["ssh"]["host"], port=inst["ssh"]["port"], username="root", pkey=key, timeout=20,
                   banner_timeout=20, auth_timeout=20, look_for_keys=False, allow_agent=False)
    return client


class GuestShell:
    """One `sh` on one SSH channel, kept open: a command is a write and a read, no new channel per
    poll (dropbear refuses channels opened faster than it closes them)."""

    def __init__(self, client):
        self.channel = client.get_transport().open_session()
        self.channel.settimeout(30)
        self.channel.exec_command("sh")
        self.count = 0

    def run(self, command):
        self.count += 1
        end = f"__end_{self.count}__"
        self.channel.sendall(f"{command}; echo {end}\n".encode())
        received = b""
        while end.encode() not in received:
            chunk = self.channel.recv(65536)
            if not chunk:
                raise RuntimeError("the guest's shell closed")
            received += chunk
        return received.decode().split(end)[0]

    def close(self):
        self.channel.close()


def block_devices(shell):
    return set(shell.run("ls /sys/block").split())


def until_in_guest(shell, present, device="vdb"):
    """Poll the guest's /sys/block until `device` is there (present) or gone; the time it was seen."""
    deadline = time.monotonic() + 60
    while True:
        if (device in block_devices(shell)) == present:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{device} {'never appeared' if present else 'never left'} in the guest")


def poll(api, path, done, what):
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        found = api.call("GET", path, 200).json()
        if done(found):
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: {found}")
        time.sleep(0.1)


def labcloud_once(api, shell, iid, n):
    started = time.monotonic()
    volume = api.call("POST", "/volumes", 201, json={"name": f"bench-{n}", "size_gib": 1, "instance": iid}).json()
    created = time.monotonic()
    attached = api.call("POST", f"/volumes/{volume['id']}/attach", 200, json={"instance": iid}).json()
    answered = time.monotonic()
    assert attached["device"] == "vdb", attached
    seen = until_in_guest(shell, True)
    detach_started = time.monotonic()
    api.call("POST", f"/volumes/{volume['id']}/detach", 200)
    detached = time.monotonic()
    gone = until_in_guest(shell, False)
    api.call("DELETE", f"/volumes/{volume['id']}", 200)
    return {"create": created - started, "attach": answered - created, "attach_seen": seen - created,
            "create_attach_seen": seen - started, "detach": detached - detach_started,
            "detach_gone": gone - detach_started}


def libvirt_once(conn, shell, iid, n):
    pool = conn.storagePoolLookupByName("labcloud")
    domain = conn.lookupByUUIDString(iid)
    xml = (f"<volume><name>baseline-{n}.qcow2</name><capacity unit='bytes'>{GIB}</capacity>"
           "<target><format type='qcow2'/></target></volume>")
    started = time.monotonic()
    volume = pool.createXML(xml, 0)
    created = time.monotonic()
    disk = volume_devices.disk_xml(volume.path(), "vdb")
    domain.attachDeviceFlags(disk, libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    answered = time.monotonic()
    seen = until_in_guest(shell, True)
    detach_started = time.monotonic()
    domain.detachDeviceFlags(disk, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    domain.detachDeviceFlags(disk, libvirt.VIR_DOMAIN_AFFECT_LIVE)
    while "vdb" in {d.find("target").get("dev") for d in ET.fromstring(domain.XMLDesc(0)).findall("devices/disk")}:
        time.sleep(0.05)
    detached = time.monotonic()
    gone = until_in_guest(shell, False)
    volume.delete(0)
    return {"create": created - started, "attach": answered - created, "attach_seen": seen - created,
            "create_attach_seen": seen - started, "detach": detached - detach_started,
            "detach_gone": gone - detach_started}


def row(name, values):
    values = [v for v in values if v is not None]
    if not values:
        return f"  {name:<40} {'-':>9} {'-':>9}"
    return (f"  {name:<40} {statistics.median(values) * 1000:>6.0f} ms {max(values) * 1000:>6.0f} ms   "
            f"({', '.join(f'{v * 1000:.0f}' for v in values)})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=5)
    args = parser.parse_args()
    key = generate_ed25519_key()
    ours, baseline, api_rtt, guest_rtt, loads = [], [], [], [], [os.getloadavg()]
    with Stack(tempfile.mkdtemp(prefix="labcloud-volumebench-"), port=free_port(), hypervisor="qemu",
               admin_password=ADMIN_PASSWORD, image_cache_dir=IMAGE_CACHE, quiet=True) as stack:
        admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
        registered = admin.call("POST", "/keys", 201, json={"name": "bench", "public_key": public_key_line(key)}).json()
        flavor = min(admin.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
        image = next(i for i in admin.call("GET", "/images", 200).json() if i["name"] == "tiny")
        iid = admin.call("POST", "/instances", 202, json={"name": "disks", "flavor": flavor["id"], "image": image["id"],
                                                          "key": registered["id"]}).json()["id"]
        inst = poll(admin, f"/instances/{iid}", lambda i: i["state"] == "error" or (i["state"] == "running"
                                                                                      and i["ready"]), "create")
        if inst["state"] != "running":
            raise SystemExit(f"the guest did not start: {inst['reason']}")
        print(f"guest {iid} running on {inst['host']}, SSH ready", flush=True)
        client = connect(inst, key)
        shell = GuestShell(client)
        conn = stack.qemu_hosts[inst["host"]].open()
        try:
            for n in range(args.runs):
                ours.append(labcloud_once(admin, shell, iid, n))
                baseline.append(libvirt_once(conn, shell, iid, n))
                probe = admin.call("POST", "/volumes", 201, json={"name": f"probe-{n}", "size_gib": 1,
                                                                  "instance": iid}).json()
                t = time.monotonic()
                admin.call("GET", f"/volumes/{probe['id']}", 200)
                api_rtt.append(time.monotonic() - t)
                admin.call("DELETE", f"/volumes/{probe['id']}", 200)
                t = time.monotonic()
                block_devices(shell)
                guest_rtt.append(time.monotonic() - t)
                loads.append(os.getloadavg())
                print(f"run {n + 1}: labcloud create+attach->seen {ours[-1]['create_attach_seen'] * 1000:.0f} ms, "
                      f"libvirt {baseline[-1]['create_attach_seen'] * 1000:.0f} ms; load {loads[-1][0]:.2f}",
                      flush=True)
        finally:
            shell.close()
            client.close()
            conn.close()
            admin.call("DELETE", f"/instances/{iid}")
            admin.wait_for(f"/instances/{iid}", lambda r: r.status_code == 404, timeout=120)
    loads.append(os.getloadavg())
    print()
    print(machine_and_load(loads))
    print(f"QEMU TCG, one private libvirtd on this machine; tiny image guest, {flavor['memory_mib']} MiB; "
          f"1 GiB qcow2 data volumes; {len(ours)} runs each")
    print(f"  {'':<40} {'median':>9} {'max':>9}")
    for title, runs in (("labcloud (REST API)", ours), ("libvirt alone (baseline)", baseline)):
        print(title)
        for key_, label in (("create", "create (qcow2 in the pool)"), ("attach", "attach (call answered)"),
                            ("attach_seen", "attach -> vdb in the guest"),
                            ("create_attach_seen", "create + attach -> vdb in the guest"),
                            ("detach", "detach (call answered)"), ("detach_gone", "detach -> vdb gone in the guest")):
            print(row(label, [r[key_] for r in runs]))
    print("floors")
    print(row("GET /volumes/{id} (API round trip)", api_rtt))
    print(row("ls /sys/block over SSH (poll round trip)", guest_rtt))


if __name__ == "__main__":
    main()
