"""Stop and reboot against a fake hypervisor: a guest that ignores ACPI is forced off in time."""
import time

import eventlet
from eventlet.queue import LightQueue

from hostagent import domains, power
from hostagent.lifecycle import DomainEvent


class FakeHypervisor:
    """Records the domains.* operations asked for; the guest never acts on ACPI requests."""

    def __init__(self, state="running"):
        self.state, self.calls = state, []

    def run(self, operation, instance_id):
        self.calls.append(operation.__name__)
        if operation in (domains.power_off,):
            self.state = "shutoff"
        elif operation is domains.start_domain:
            self.state = "running"
        return {"instance_id": instance_id, "state": self.state}


class FakeEvents:
    def __init__(self, events=()):
        self.events = list(events)

    def watch(self, _instance_id):
        import contextlib
        queue = LightQueue()
        for event in self.events:
            queue.put(event)
        return contextlib.nullcontext(queue)


def test_guest_ignoring_acpi_is_destroyed_after_the_timeout(monkeypatch):
    monkeypatch.setattr(power, "REPRESS_INTERVAL_S", 0.3)
    hypervisor = FakeHypervisor()
    started = time.monotonic()
    assert power.stop(hypervisor, "i", 1.0)["state"] == "shutoff"
    assert 1.0 <= time.monotonic() - started < 2.0
    assert hypervisor.calls[-1] == "power_off"
    assert hypervisor.calls.count("request_shutdown") >= 3  # the button was pressed again


def test_stop_polls_without_blocking_the_hub():
    hypervisor, ticks = FakeHypervisor(), []
    ticker = eventlet.spawn(lambda: [ticks.append(eventlet.sleep(0.05)) for _ in range(10)])
    power.stop(hypervisor, "i", 0.6)
    ticker.wait()
    assert len(ticks) == 10


def test_stopped_domain_stays_stopped():
    hypervisor = FakeHypervisor("shutoff")
    assert power.stop(hypervisor, "i", 5)["state"] == "shutoff"
    assert hypervisor.calls == ["request_shutdown"]


def test_reboot_acted_on_needs_no_force():
    hypervisor = FakeHypervisor()
    events = FakeEvents([DomainEvent("reboot", "i", None, None)])
    assert power.reboot(hypervisor, events, "i", 5)["state"] == "running"
    assert "power_off" not in hypervisor.calls


def test_reboot_ignored_is_destroy_and_start():
    hypervisor = FakeHypervisor()
    assert power.reboot(hypervisor, FakeEvents(), "i", 0.2)["state"] == "running"
    assert hypervisor.calls[-3:] == ["request_reboot", "power_off", "start_domain"]
