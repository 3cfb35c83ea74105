"""Stop/start/reboot requests and what hosts report on their own, on a real migrated database:
reports are ordered by the host's sequence numbers, so out-of-order delivery never moves a guest
back."""
import random

import pytest

from common.errors import Conflict, HostOperationFailed
from services.instances import instance_store, lifecycle, power
from services.instances.models import Instance
from tests.instances.fakes import ACTOR, NOW, FakeCloud, limits_of, running_instance


class FailingHost:
    def __call__(self, host):
        return self

    def __getattr__(self, method):
        def call(request):
            raise HostOperationFailed(f"{method} exploded")
        return call


def power_cycle(session, cloud, inst, action):
    instance, requested = lifecycle.request_power(session, ACTOR, inst.id, action, limits_of())
    assert requested and instance.state == {"stop": "stopping", "start": "starting", "reboot": "rebooting"}[action]
    return power.run_power(session, inst.id, action, cloud.peers.hosts, lambda: NOW)


def test_stop_then_start(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    assert lifecycle.request_power(session, ACTOR, inst.id, "stop", limits_of())[0].state == "stopping"
    again, requested = lifecycle.request_power(session, ACTOR, inst.id, "stop", limits_of())  # asked twice
    assert again.state == "stopping" and not requested
    assert power.run_power(session, inst.id, "stop", cloud.peers.hosts, lambda: NOW) == "stopped"
    assert cloud.domains[inst.id]["state"] == "shutoff"
    with pytest.raises(Conflict) as err:
        lifecycle.request_power(session, ACTOR, inst.id, "reboot", limits_of())
    assert err.value.fields == {"state": ["is stopped; reboot needs running"]}
    assert power_cycle(session, cloud, inst, "start") == "running"
    session.refresh(inst)
    assert inst.started_at == NOW and inst.ssh_ready_at is None
    assert [(a.action, a.result, a.username) for a in instance_store.list_actions(session, inst.id)] == [
        ("create", "success", "ada"), ("stop", "success", "ada"), ("start", "success", "ada")]


def test_failed_power_action_is_an_error_with_reason(session):
    inst = running_instance(session, FakeCloud())
    lifecycle.request_power(session, ACTOR, inst.id, "reboot", limits_of())
    assert power.run_power(session, inst.id, "reboot", FailingHost(), lambda: NOW) == "error"
    session.refresh(inst)
    assert inst.reason == "reboot failed: reboot_domain exploded"
    [_, reboot] = instance_store.list_actions(session, inst.id)
    assert (reboot.action, reboot.result, reboot.message) == ("reboot", "error", inst.reason)


def test_guest_powering_itself_off_is_seen_and_so_is_its_return(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    off, on = cloud.next_seq(), cloud.next_seq()
    assert power.observe_domain_state(session, inst.id, "shutoff", off) == "stopped"
    assert power.observe_domain_state(session, inst.id, "shutoff", off) is None  # redelivered event
    assert power.observe_domain_state(session, inst.id, "running", on) == "running"


def test_a_crashed_guest_is_stopped_with_the_reason(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    assert power.observe_domain_state(session, inst.id, "crashed", cloud.next_seq()) == "stopped"
    session.refresh(inst)
    assert inst.reason == "the guest crashed"


def test_host_events_do_not_override_a_delete(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    lifecycle.request_delete(session, ACTOR, inst.id)
    assert power.observe_domain_state(session, inst.id, "shutoff", cloud.next_seq()) is None
    session.refresh(inst)
    assert inst.state == "deleting"


def test_an_older_event_never_moves_a_running_guest_back(session):
    """Stop, then start: the stop's `shutoff` event is handled last (another worker was slow)."""
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    assert power_cycle(session, cloud, inst, "stop") == "stopped"
    shutoff_seq = session.get(Instance, inst.id).host_seq
    assert power_cycle(session, cloud, inst, "start") == "running"
    assert power.observe_domain_state(session, inst.id, "shutoff", shutoff_seq - 1) is None
    session.refresh(inst)
    assert inst.state == "running"


@pytest.mark.parametrize("seed", range(20))
def test_shuffled_events_of_one_domain_end_in_the_newest_state(session, seed):
    """A guest that goes off and on a few times: whatever order its events are handled in, the
    instance ends where the newest event puts it."""
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    rng = random.Random(seed)
    events = []
    for _ in range(rng.randint(2, 9)):
        events.append(("shutoff" if rng.random() < 0.5 else "running", cloud.next_seq()))
    newest = events[-1][0]
    rng.shuffle(events)
    for state, seq in events:
        power.observe_domain_state(session, inst.id, state, seq)
    session.refresh(inst)
    assert inst.state == {"running": "running", "shutoff": "stopped"}[newest], events


def test_a_reboot_that_shuts_off_and_starts_again_ends_running(session):
    """The host destroys and starts the guest (it ignored the ACPI reboot): its `shutoff` event may
    be handled after the reboot saga has finished, and must not stop the instance."""
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    lifecycle.request_power(session, ACTOR, inst.id, "reboot", limits_of())
    shutoff, started = cloud.next_seq(), cloud.next_seq()
    assert power.run_power(session, inst.id, "reboot", cloud.peers.hosts, lambda: NOW) == "running"
    assert power.observe_domain_state(session, inst.id, "running", started) is None
    assert power.observe_domain_state(session, inst.id, "shutoff", shutoff) is None
    session.refresh(inst)
    assert inst.state == "running"


def test_a_stop_whose_guest_is_reported_on_again_ends_running(session):
    """A newer host report than the stop's own answer wins: the saga ends where the guest is."""
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    lifecycle.request_power(session, ACTOR, inst.id, "stop", limits_of())
    original = cloud.host.stop_domain

    def stop_then_someone_starts_it(req):
        answer = original(req)
        power.observe_domain_state(session, inst.id, "running", cloud.next_seq())  # newer event first
        return answer
    cloud.host.stop_domain = stop_then_someone_starts_it
    assert power.run_power(session, inst.id, "stop", cloud.peers.hosts, lambda: NOW) == "running"
    [*_, stop] = instance_store.list_actions(session, inst.id)
    assert (stop.action, stop.result, stop.message) == ("stop", "error", "the guest is running")


def test_ssh_ready_counts_only_for_the_boot_it_followed(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    started_seq = session.get(Instance, inst.id).started_seq
    assert not power.observe_ssh_ready(session, inst.id, "h1", started_seq - 5, NOW)  # an earlier boot
    assert not power.observe_ssh_ready(session, inst.id, "h2", started_seq + 1, NOW)  # not its host
    assert power.observe_ssh_ready(session, inst.id, "h1", started_seq + 1, NOW)
    session.refresh(inst)
    assert inst.ssh_ready_at == NOW
