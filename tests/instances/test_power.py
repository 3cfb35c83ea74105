"""Stop/start/reboot requests and what hosts report on their own, on a real migrated database."""
import pytest

from common.errors import Conflict, HostOperationFailed
from services.instances import power, saga
from tests.instances.fakes import ACTOR, NOW, POLICY, FakeCloud, new_instance


def running_instance(session, cloud):
    inst = new_instance(session)
    assert saga.run_create(session, inst.id, cloud.peers, POLICY, lambda: NOW) == "running"
    return inst


class RecordingHost:
    def __init__(self, fail=False):
        self.calls, self.fail = [], fail

    def __call__(self, host):
        return self

    def __getattr__(self, method):
        def call(request):
            self.calls.append((method, request["instance_id"]))
            if self.fail:
                raise HostOperationFailed(f"{method} exploded")
            return {"instance_id": request["instance_id"], "state": "shutoff"}
        return call


def test_stop_then_start(session):
    inst = running_instance(session, FakeCloud())
    assert power.request_power(session, ACTOR, inst.id, "stop").state == "stopping"
    assert power.request_power(session, ACTOR, inst.id, "stop").state == "stopping"  # asked twice
    host = RecordingHost()
    assert power.run_power(session, inst.id, "stop", host, lambda: NOW) == "stopped"
    assert host.calls == [("stop_domain", inst.id)]
    with pytest.raises(Conflict) as err:
        power.request_power(session, ACTOR, inst.id, "reboot")
    assert "state" in err.value.fields
    power.request_power(session, ACTOR, inst.id, "start")
    assert power.run_power(session, inst.id, "start", host, lambda: NOW) == "running"
    session.refresh(inst)
    assert inst.started_at == NOW and inst.ssh_ready_at is None


def test_failed_power_action_is_an_error_with_reason(session):
    inst = running_instance(session, FakeCloud())
    power.request_power(session, ACTOR, inst.id, "reboot")
    assert power.run_power(session, inst.id, "reboot", RecordingHost(fail=True), lambda: NOW) == "error"
    session.refresh(inst)
    assert inst.reason == "reboot failed: reboot_domain exploded"


def test_guest_powering_itself_off_is_seen_and_so_is_its_return(session):
    inst = running_instance(session, FakeCloud())
    assert power.observe_domain_state(session, inst.id, "shutoff", lambda: NOW) == "stopped"
    assert power.observe_domain_state(session, inst.id, "shutoff", lambda: NOW) is None  # repeated event
    assert power.observe_domain_state(session, inst.id, "running", lambda: NOW) == "running"


def test_host_events_do_not_override_a_delete(session):
    inst = running_instance(session, FakeCloud())
    from services.instances import lifecycle
    lifecycle.request_delete(session, ACTOR, inst.id, NOW)
    assert power.observe_domain_state(session, inst.id, "shutoff", lambda: NOW) is None
    session.refresh(inst)
    assert inst.state == "deleting"
