"""Live migration of the tiny real QEMU guest between the two linked local hosts, end to end
through the REST API, against a stop + start of the same guest as the baseline.

Starts a stack with two real QEMU hosts (private libvirtds in network namespaces, linked: one L2
segment for the guests, a migration network for QEMU's stream), creates one guest of the tiny image
(1 vCPU, uncapped, smallest memory) with a key, waits for SSH, then, interleaved so drift on the
machine hits both alike:
- migration i (back and forth between host1 and host2): POST /instances/{id}/migrate {host}
  -> GET (every 50 ms) shows the instance running on the other host: the total a user sees.
  The time the host agent's migrate3 call took and libvirt's switch-over downtime (the
  destination's completed job) come from the migrate action's message ("host1 -> host2: migrate3
  2.41 s, downtime 59 ms").
- baseline i: POST /stop -> stopped, POST /start -> running, then a fresh SSH login answers: the
  outage of the closest thing an admin had before live migration: a restart in place, a lower
  bound of any move that stops the guest (a cold migration copies the disk as well).

Guest-observed downtime, the same way for both: an SSH session (paramiko, through the instance's
SSH endpoint, opened before the action) runs busybox `cat`; a thread sends a numbered line every
5 ms and another records when each echo comes back. The longest gap between two consecutive echoes
is the longest time a client with an open TCP connection into the guest got nothing back; it
includes TCP retransmission (the segments sent into the paused guest are lost with the source's
QEMU), the host's SSH forward and paramiko, so it is an upper bound of the guest's pause and what
an interactive user feels. For the baseline the session dies with the guest: the gap runs from the
last echo of the old session to the first echo of a new one.

Exits 1 if a migration fails (not running on the other host, a reason set, the action an error, the
session broken) or the probe loses echoes.

    .venv/bin/python bench/migrate.py [-n 5] [--baseline-runs N]
"""
import argparse
import os
import re
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import paramiko  # noqa: E402

from imagebuilder.bareboot import generate_ed25519_key, public_key_line, wait_for_ssh  # noqa: E402
from bench.machine import machine_and_load  # noqa: E402
from labcloud.rabbit import free_port  # noqa: E402
from labcloud.stack import Stack  # noqa: E402
from tests.e2e.api import Api  # noqa: E402

ADMIN_PASSWORD = "bench-admin-password"
IMAGE_CACHE = os.path.join(tempfile.gettempdir(), "labcloud-debcache")
POLL_S = 0.05          # GET interval while a migration or a power action runs
ECHO_EVERY_S = 0.005   # one probe line per 5 ms
TAIL_S = 1.5           # the probe keeps running this long after the API shows the move done
TIMEOUT_S = 240


class EchoProbe:
    """A numbered line every ECHO_EVERY_S into `cat` over an SSH channel; the arrival time of each
    echo. The longest gap between consecutive arrivals is what a client saw of the downtime."""

    def __init__(self, client):
        self.client = client
        self.channel = client.get_transport().open_session()
        self.channel.exec_command("cat")
        self.sent = {}
        self.arrivals = []   # (monotonic time, sequence number)
        self.error = None
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, daemon=True),
                         threading.Thread(target=self._receive, daemon=True)]

    def start(self):
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + 20
        while not self.arrivals:   # the first echo: the session works
            if time.monotonic() > deadline or self.error:
                raise RuntimeError(f"the echo probe got no answer: {self.error!r}")
            time.sleep(0.01)
        return self

    def _send(self):
        seq = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.sent[seq] = time.monotonic()
            try:
                self.channel.sendall(f"{seq}\n".encode())
            except (OSError, EOFError, paramiko.SSHException) as exc:
                self.error = self.error or exc
                return
            seq += 1
            next_at += ECHO_EVERY_S
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _receive(self):
        pending = b""
        while True:
            try:
                data = self.channel.recv(65536)
            except (OSError, EOFError, paramiko.SSHException) as exc:
                self.error = self.error or exc
                return
            if not data:
                return
            now = time.monotonic()
            pending += data
            *lines, pending = pending.split(b"\n")
            self.arrivals.extend((now, int(line)) for line in lines if line.strip())

    def stop(self):
        self._stop.set()
        self._threads[0].join(5)
        try:
            self.channel.shutdown_write()
        except (OSError, EOFError, paramiko.SSHException):
            pass
        self._threads[1].join(5)
        self.channel.close()
        self.client.close()

    def last_arrival(self):
        return self.arrivals[-1][0] if self.arrivals else None

    def longest_gap(self, since):
        """(longest gap between consecutive echoes after `since`, the round trip of the echo that
        ended it), both in seconds."""
        times = [(t, seq) for t, seq in self.arrivals if t >= since]
        before = [t for t, _ in self.arrivals if t < since]
        if before:
            times.insert(0, (before[-1], None))
        best, rtt = 0.0, 0.0
        for (t0, _), (t1, seq) in zip(times, times[1:]):
            if t1 - t0 > best:
                best, rtt = t1 - t0, t1 - self.sent[seq]
        return best, rtt

    def lost(self):
        """Sequence numbers sent (up to the last echoed one) that never came back."""
        if not self.arrivals:
            return 0
        got = {seq for _, seq in self.arrivals}
        return sum(1 for seq in range(self.arrivals[-1][1] + 1) if seq not in got)


def connect(inst, key):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(inst["ssh"]["host"], port=inst["ssh"]["port"], username="root", pkey=key, timeout=20,
                   banner_timeout=20, auth_timeout=20, look_for_keys=False, allow_agent=False)
    return client


def poll(api, iid, done, what):
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        inst = api.call("GET", f"/instances/{iid}", 200).json()
        if done(inst):
            return inst, time.monotonic()
        if inst["state"] == "error" or time.monotonic() > deadline:
            raise RuntimeError(f"{what}: {inst['state']} on {inst.get('host')}: {inst.get('reason')}")
        time.sleep(POLL_S)


TIMING = re.compile(r"migrate3 (?P<total>[\d.]+) s(?:, downtime (?P<downtime>\d+) ms)?")


def migrate_action(api, iid, seen_ids):
    """The newest migrate action not in `seen_ids`, once finished."""
    deadline = time.monotonic() + 30
    while True:
        actions = [a for a in api.call("GET", f"/instances/{iid}/actions", 200).json()
                   if a["action"] == "migrate" and a["id"] not in seen_ids]
        if actions and actions[-1]["result"] != "in_progress":
            return max(actions, key=lambda a: a["id"])
        if time.monotonic() > deadline:
            raise RuntimeError(f"no finished migrate action: {actions}")
        time.sleep(0.1)


def migrate_once(admin, iid, key, seen_ids):
    inst = admin.call("GET", f"/instances/{iid}", 200).json()
    source = inst["host"]
    destination = "host2" if source == "host1" else "host1"
    probe = EchoProbe(connect(inst, key)).start()
    try:
        time.sleep(0.3)   # some echoes before, so the gap is measured from a steady stream
        started = time.monotonic()
        admin.call("POST", f"/instances/{iid}/migrate", 202, json={"host": destination})
        try:
            moved, done = poll(admin, iid, lambda i: i["state"] != "migrating", "migration")
        except RuntimeError as exc:
            raise RuntimeError(f"{source} -> {destination}: {exc}") from None
        total = done - started
        time.sleep(TAIL_S)
    finally:
        probe.stop()
    if moved["state"] != "running" or moved["host"] != destination or moved.get("reason"):
        raise RuntimeError(f"{source} -> {destination} failed: {moved['state']} on {moved['host']}: "
                           f"{moved.get('reason')}")
    action = migrate_action(admin, iid, seen_ids)
    seen_ids.add(action["id"])
    if action["result"] != "success":
        raise RuntimeError(f"{source} -> {destination}: action {action['result']}: {action['message']}")
    match = TIMING.search(action["message"] or "")
    if probe.error or probe.last_arrival() is None or probe.last_arrival() < done:
        raise RuntimeError(f"{source} -> {destination}: the open SSH session broke: {probe.error!r}")
    gap, rtt = probe.longest_gap(started)
    return {"route": f"{source} -> {destination}", "total": total,
            "libvirt": float(match["total"]) if match else None,
            "downtime": int(match["downtime"]) / 1000 if match and match["downtime"] else None,
            "gap": gap, "gap_rtt": rtt, "lost": probe.lost(), "message": action["message"]}


def restart_once(admin, iid, key):
    inst = admin.call("GET", f"/instances/{iid}", 200).json()
    probe = EchoProbe(connect(inst, key)).start()
    try:
        time.sleep(0.3)
        started = time.monotonic()
        admin.call("POST", f"/instances/{iid}/stop", 202)
        _, stopped = poll(admin, iid, lambda i: i["state"] == "stopped", "stop")
    finally:
        probe.stop()
    last_echo = probe.last_arrival()
    admin.call("POST", f"/instances/{iid}/start", 202)
    inst, running = poll(admin, iid, lambda i: i["state"] == "running" and i.get("ssh"), "start")
    client = wait_for_ssh(inst["ssh"]["port"], key, time.monotonic() + TIMEOUT_S, host=inst["ssh"]["host"])
    probe = EchoProbe(client).start()   # returns at the first echo of the new session
    first_echo = probe.arrivals[0][0]
    probe.stop()
    # The guest's `ready` (its SSH answered the host) before the next round's session.
    poll(admin, iid, lambda i: i["state"] == "running" and i["ready"], "ready")
    return {"host": inst["host"], "total": first_echo - started, "stop": stopped - started,
            "start": running - stopped, "gap": first_echo - last_echo}


def row(name, values, unit="s"):
    values = [v for v in values if v is not None]
    if not values:
        return f"  {name:<44} {'-':>9} {'-':>9}"
    scale, fmt = (1000, "{:.0f} ms") if unit == "ms" else (1, "{:.2f} s")
    return (f"  {name:<44} {fmt.format(statistics.median(values) * scale):>9} "
            f"{fmt.format(max(values) * scale):>9}   ({', '.join(fmt.format(v * scale) for v in values)})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=5, help="migrations (back and forth)")
    parser.add_argument("--baseline-runs", type=int, help="stop + start runs (default: max(3, runs))")
    args = parser.parse_args()
    baseline_runs = args.baseline_runs if args.baseline_runs is not None else max(3, args.runs)
    key = generate_ed25519_key()
    migrations, restarts, loads = [], [], [os.getloadavg()]
    failed = None
    with Stack(tempfile.mkdtemp(prefix="labcloud-migratebench-"), port=free_port(), hosts=2, hypervisor="qemu",
               admin_password=ADMIN_PASSWORD, image_cache_dir=IMAGE_CACHE, quiet=True) as stack:
        admin = Api(stack.url).login("admin", ADMIN_PASSWORD)
        registered = admin.call("POST", "/keys", 201, json={"name": "bench", "public_key": public_key_line(key)}).json()
        flavor = min((f for f in admin.call("GET", "/flavors", 200).json()
                      if f["vcpus"] == 1 and f["cpu_cap_percent"] in (0, 100)), key=lambda f: f["memory_mib"])
        image = next(i for i in admin.call("GET", "/images", 200).json() if i["name"] == "tiny")
        inst = admin.call("POST", "/instances", 202, json={"name": "traveller", "flavor": flavor["id"],
                                                           "image": image["id"], "key": registered["id"]}).json()
        iid = inst["id"]
        inst, _ = poll(admin, iid, lambda i: i["state"] == "running" and i["ready"], "create")
        print(f"guest {iid} running on {inst['host']}, SSH ready", flush=True)
        seen = {a["id"] for a in admin.call("GET", f"/instances/{iid}/actions", 200).json()}
        try:
            for n in range(max(args.runs, baseline_runs)):
                if n < args.runs:
                    m = migrate_once(admin, iid, key, seen)
                    migrations.append(m)
                    loads.append(os.getloadavg())
                    print(f"migration {n + 1}: {m['route']}: API {m['total']:.2f} s; action: {m['message']}; "
                          f"longest echo gap {m['gap'] * 1000:.0f} ms (its echo's round trip "
                          f"{m['gap_rtt'] * 1000:.0f} ms), lost {m['lost']}; load {loads[-1][0]:.2f}", flush=True)
                    if m["lost"]:
                        raise RuntimeError(f"{m['lost']} echoes lost over the open session")
                if n < baseline_runs:
                    r = restart_once(admin, iid, key)
                    restarts.append(r)
                    loads.append(os.getloadavg())
                    print(f"stop + start {n + 1} on {r['host']}: stop -> SSH answers {r['total']:.2f} s "
                          f"(stop {r['stop']:.2f} s, start -> running {r['start']:.2f} s), echo gap "
                          f"{r['gap']:.2f} s; load {loads[-1][0]:.2f}", flush=True)
        except Exception as exc:  # reported below, after the table of what did run
            failed = exc
        admin.call("DELETE", f"/instances/{iid}")
        admin.wait_for(f"/instances/{iid}", lambda r: r.status_code == 404, timeout=120)
    loads.append(os.getloadavg())
    print()
    print(machine_and_load(loads))
    print(f"QEMU TCG, two private libvirtds linked on this machine; tiny image, idle guest; flavor "
          f"{flavor['name']}: 1 vCPU, {flavor['memory_mib']} MiB; {len(migrations)} migrations, "
          f"{len(restarts)} stop + start runs")
    print(f"  {'':<44} {'median':>9} {'max':>9}")
    print("live migration")
    print(row("POST migrate -> GET running on the other host", [m["total"] for m in migrations]))
    print(row("agent's migrate3 call (action log)", [m["libvirt"] for m in migrations]))
    print(row("libvirt downtime (action log)", [m["downtime"] for m in migrations], "ms"))
    print(row("client-seen downtime: longest echo gap", [m["gap"] for m in migrations], "ms"))
    print("baseline: stop + start on the same host")
    print(row("POST stop -> fresh SSH session echoes", [r["total"] for r in restarts]))
    print(row("  of which POST stop -> GET stopped", [r["stop"] for r in restarts]))
    print(row("  of which POST start -> GET running", [r["start"] for r in restarts]))
    print(row("client-seen downtime: last echo -> first echo", [r["gap"] for r in restarts]))
    if migrations and restarts:
        print(f"client-seen downtime, medians: migration {statistics.median(m['gap'] for m in migrations) * 1000:.0f}"
              f" ms vs stop + start {statistics.median(r['gap'] for r in restarts):.2f} s")
    if failed is not None:
        print(f"FAILED: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
