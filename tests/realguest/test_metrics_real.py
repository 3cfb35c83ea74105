"""XenServer's rrd_updates with a real guest (issue 12's proof): one tiny guest is made busy (a CPU
loop, and a few MiB each way over SSH), then
- its host agent's own port (the one `labcloud run` opens, credentials from the data dir) answers
  /rrd_updates with HTTP Basic only, and the reply, read as XenServer's Java clients read it, holds
  the guest's cpu0 at BUSY_CPU or more and its vif rx and tx at BUSY_NET or more;
- once the guest is stopped, the gateway answers the same for its owner (a labcloud username and
  password), from the metrics service's history, and /vm_rrd is its whole database.
The guest is deleted at the end."""
import threading
import time

import pytest
import requests

from tests.realguest.guests import students_guests
from tests.realguest.rrd_xml import parse_rrd_updates
from tests.realguest.test_real_guest import ssh, wait_ready

pytestmark = pytest.mark.realguest

BUSY_S = 8
TRAFFIC_BYTES = 4 * 1024 * 1024  # each way, over the SSH session (encrypted by the guest's CPU too)
# The spinning TCG guest reached 0.46 of its vCPU (6 s rows) with this machine at load 7.
BUSY_CPU = 0.2
# Bytes/s a few MiB in some seconds must show as, far above what an idle guest's network carries.
BUSY_NET = 20_000


def spin(client, seconds):
    """The guest's CPU busy for `seconds` (a shell loop: no `timeout` needed in the tiny image)."""
    _, out, _ = client.exec_command(
        f"end=$(( $(date +%s) + {seconds} )); while [ $(date +%s) -lt $end ]; do :; done; echo spun",
        timeout=seconds + 60)
    assert out.read().decode().strip() == "spun"


def send_into(client, size):
    """`size` bytes into the guest (its vif receives them)."""
    channel = client.get_transport().open_session()
    channel.exec_command("cat > /dev/null; echo received")
    chunk = bytes(65536)
    for _ in range(size // len(chunk)):
        channel.sendall(chunk)
    channel.shutdown_write()
    assert channel.makefile().read().decode().strip() == "received"
    channel.close()


def receive_from(client, size):
    """`size` bytes out of the guest (its vif sends them)."""
    _, out, _ = client.exec_command(f"dd if=/dev/zero bs=65536 count={size // 65536} 2>/dev/null", timeout=120)
    assert len(out.read()) == size


@pytest.fixture(scope="module")
def busy_guest(qemu_stack):
    """(owner's api, the guest, when it started being busy): after the busy seconds are over."""
    with students_guests(qemu_stack.url, "rgmetrics", ("metrics-a",), wait_ready) as (api, key, [guest]):
        started = int(time.time())
        with ssh(guest, key) as cpu, ssh(guest, key) as net:
            spinning = threading.Thread(target=spin, args=(cpu, BUSY_S))
            spinning.start()
            send_into(net, TRAFFIC_BYTES)
            receive_from(net, TRAFFIC_BYTES)
            spinning.join()
        yield api, guest, started


def wait_for_busy_rows(get, guest_id, timeout=60):
    """Polls `get()` (an rrd_updates reply) until the guest's busy seconds are in it: its highest
    cpu0 and vif rx/tx values, and the parsed reply."""
    deadline = time.monotonic() + timeout
    while True:
        answer = get()
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"].startswith("text/xml")
        updates = parse_rrd_updates(answer.text)
        names = updates.names("AVERAGE", "vm", guest_id)
        peaks = {name: max((v for _t, v in updates.series("AVERAGE", "vm", guest_id, name)), default=0)
                 for name in names if name == "cpu0" or (name.startswith("vif_") and name.endswith(("_rx", "_tx")))}
        busy = peaks.get("cpu0", 0) >= BUSY_CPU and \
            any(v >= BUSY_NET for n, v in peaks.items() if n.endswith("_rx")) and \
            any(v >= BUSY_NET for n, v in peaks.items() if n.endswith("_tx"))
        if busy or time.monotonic() > deadline:
            return peaks, updates
        time.sleep(1)


def assert_busy(peaks, updates, guest_id):
    assert "cpu0" in peaks and any(n.endswith("_rx") for n in peaks) and any(n.endswith("_tx") for n in peaks), \
        updates.legend
    assert peaks["cpu0"] >= BUSY_CPU, peaks
    assert max(v for n, v in peaks.items() if n.endswith("_rx")) >= BUSY_NET, peaks
    assert max(v for n, v in peaks.items() if n.endswith("_tx")) >= BUSY_NET, peaks
    assert {entry.split(":")[2] for entry in updates.legend} == {guest_id}


def test_the_host_agents_rrd_updates_show_the_busy_guest(qemu_stack, busy_guest):
    _api, guest, started = busy_guest
    agent = qemu_stack.agent_metrics[guest["host"]]
    url = f"{agent.url}/rrd_updates"
    # Without vm_uuid: every VM of the host, which is this module's guest alone.
    params = {"start": started - 10, "cf": "AVERAGE", "interval": 5}
    for auth in (None, (agent.user, "wrong")):
        refused = requests.get(url, params=params, auth=auth, timeout=30)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
    peaks, updates = wait_for_busy_rows(lambda: requests.get(url, params=params, auth=agent.auth, timeout=30),
                                        guest["id"])
    assert_busy(peaks, updates, guest["id"])
    print(f"\nagent rrd_updates: step {updates.step} s, {len(updates.rows)} rows, peaks {peaks}")


def test_the_gateway_keeps_them_for_the_stopped_guest(qemu_stack, busy_guest):
    api, guest, started = busy_guest
    api.call("POST", f"/instances/{guest['id']}/stop", 202)
    api.wait_for(f"/instances/{guest['id']}", lambda r: r.json()["state"] == "stopped", timeout=120, interval=0.5)
    owner = (api.username, api.password)
    params = {"start": started - 10, "cf": "AVERAGE", "interval": 5, "vm_uuid": guest["id"]}
    url = f"{qemu_stack.url}/rrd_updates"
    assert requests.get(url, params=params, timeout=30).status_code == 401
    peaks, updates = wait_for_busy_rows(lambda: requests.get(url, params=params, auth=owner, timeout=30),
                                        guest["id"], timeout=10)
    assert_busy(peaks, updates, guest["id"])
    print(f"\ngateway rrd_updates of the stopped guest: step {updates.step} s, {len(updates.rows)} rows, peaks {peaks}")
    whole = requests.get(f"{qemu_stack.url}/vm_rrd", params={"uuid": guest["id"]}, auth=owner, timeout=30)
    assert whole.status_code == 200 and whole.headers["Content-Type"].startswith("text/xml")
    assert "<rrd>" in whole.text and "<name> cpu0 </name>" in whole.text and "<name> vif_0_tx </name>" in whole.text
