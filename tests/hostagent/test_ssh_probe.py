"""SSH readiness probes, against servers inside a network namespace the test creates: a real SSH
server (paramiko) and an echo server (listens, but is no SSH)."""
import logging
import time

import eventlet
import pytest

from hostagent import ssh_probe
from hostagent.port_forward import connect_in_namespace
from hostagent.ssh_readiness import ProbeRunner
from tests.hostagent.netutil import add_address, echo_server, ssh_server

SSH_GUEST, ECHO_GUEST, NOBODY = "10.251.0.2", "10.251.0.3", "10.251.0.4"


@pytest.fixture
def guests(netns):
    add_address(netns, "10.251.0.1/24")
    add_address(netns, f"{SSH_GUEST}/24")
    add_address(netns, f"{ECHO_GUEST}/24")
    servers = [ssh_server(netns, (SSH_GUEST, 22)), echo_server(netns, (ECHO_GUEST, 22))]
    yield connect_in_namespace(netns)
    for thread, listener in servers:
        thread.kill()
        listener.close()


def test_banner_then_key_exchange(guests):
    assert ssh_probe.banner_seen(guests, (SSH_GUEST, 22))
    assert ssh_probe.ssh_answers(guests, (SSH_GUEST, 22))
    # Listening is not enough: the echo server never greets.
    assert not ssh_probe.banner_seen(guests, (ECHO_GUEST, 22), timeout=0.3)
    assert not ssh_probe.ssh_answers(guests, (ECHO_GUEST, 22), timeout=0.5)
    assert not ssh_probe.banner_seen(guests, (SSH_GUEST, 2222), timeout=0.3)  # nothing listens


def test_wait_for_ssh_polls_until_the_deadline(guests):
    assert ssh_probe.wait_for_ssh(guests, (SSH_GUEST, 22), 5)
    started = time.monotonic()
    assert not ssh_probe.wait_for_ssh(guests, (NOBODY, 22), 0.5)
    assert 0.5 <= time.monotonic() - started < 3


class Recorder:
    def __init__(self):
        self.ready = []

    def __call__(self, ready):
        self.ready.append(ready)


def runner_for(connect, timeout_s, recorder):
    return ProbeRunner(connect, timeout_s, eventlet.spawn, recorder)


def wait_until(condition, timeout=10):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        eventlet.sleep(0.02)


def test_probe_reports_once_when_ssh_answers(guests):
    recorder = Recorder()
    runner = runner_for(guests, 10, recorder)
    before = time.time_ns()
    runner.start("i-1", SSH_GUEST)
    wait_until(lambda: recorder.ready)
    [ready] = recorder.ready
    assert ready["instance_id"] == "i-1" and ready["seq"] > before and ready["at"]
    assert runner.probing() == set()  # done: nothing left running


def test_new_start_replaces_the_probe_and_cancel_stops_it(netns):
    """Probes of a guest whose SSH comes up later: a second start replaces the first probe (one
    report, not two), a cancelled probe reports nothing."""
    add_address(netns, f"{SSH_GUEST}/24")
    recorder = Recorder()
    runner = runner_for(connect_in_namespace(netns), 30, recorder)
    runner.start("i-1", SSH_GUEST)
    runner.start("i-1", SSH_GUEST)  # a redelivered start
    runner.start("i-2", SSH_GUEST)
    eventlet.sleep(0.3)
    assert runner.probing() == {"i-1", "i-2"}
    assert runner.cancel("i-2") is True and runner.cancel("i-2") is False
    thread, listener = ssh_server(netns, (SSH_GUEST, 22))  # SSH comes up
    try:
        wait_until(lambda: recorder.ready)
        eventlet.sleep(0.5)  # time for a second report, if one were coming
        assert [ready["instance_id"] for ready in recorder.ready] == ["i-1"]
    finally:
        thread.kill()
        listener.close()


def test_probe_that_times_out_warns_and_reports_nothing(netns, caplog):
    recorder = Recorder()
    runner = runner_for(connect_in_namespace(netns), 0.3, recorder)
    with caplog.at_level(logging.WARNING, logger="hostagent.ssh_readiness"):
        runner.start("i-9", NOBODY)
        wait_until(lambda: not runner.probing())
    assert recorder.ready == []
    assert "did not answer within 0.3 s" in caplog.text
