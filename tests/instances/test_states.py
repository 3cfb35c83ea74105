"""The state machine, table-driven: every state x every action, the expected result; then the same
user actions through lifecycle.py on a real database, and delete from every state on the fakes
ending in `deleted` with nothing left."""
import pytest
from sqlalchemy import update

from common.errors import Conflict
from services.instances import lifecycle, saga, states
from services.instances.models import Instance
from tests.instances.fakes import ACTOR, NOW, FakeCloud, limits_of, new_instance, running_instance

ALL_STATES = ["pending", "building", "running", "stopping", "stopped", "starting", "rebooting", "error",
              "host_down", "deleting", "deleted", "resizing", "migrating"]
# Expected target of each action from each state; "-" = not allowed (a user request: 409).
#                     pend      build     run        stopping   stopped    starting   reboot     error      host_down  deleting  deleted resizing migrating
EXPECTED = {
    "stop":          ["-",      "-",      "stopping", "-",       "-",       "-",       "-",       "-",       "-",       "-",      "-", "-", "-"],
    "start":         ["-",      "-",      "-",        "-",       "starting", "-",      "-",       "-",       "-",       "-",      "-", "-", "-"],
    "reboot":        ["-",      "-",      "rebooting", "-",      "-",       "-",       "-",       "-",       "-",       "-",      "-", "-", "-"],
    "delete":        ["deleted", "deleting", "deleting", "deleting", "deleting", "deleting", "deleting", "deleting", "deleting", "-", "-", "deleting", "deleting"],
    "saga:schedule": ["building", "building", "-",     "-",       "-",       "-",       "-",       "-",       "-",       "-",      "-", "-", "-"],
    "saga:built":    ["-",      "running", "-",       "-",       "-",       "-",       "-",       "-",       "-",       "-",      "-", "-", "-"],
    "saga:fail":     ["error",  "error",  "-",        "-",       "-",       "-",       "-",       "-",       "-",       "-",      "-", "-", "-"],
    "saga:powered_on":  ["-",   "-",      "-",        "running", "-",       "running", "running", "-",       "-",       "-",      "-", "running", "-"],
    "saga:powered_off": ["-",   "-",      "-",        "stopped", "-",       "stopped", "stopped", "-",       "-",       "-",      "-", "stopped", "-"],
    "saga:power_failed": ["-",  "-",      "-",        "error",   "-",       "error",   "error",   "-",       "-",       "-",      "-", "error", "-"],
    "saga:torn_down": ["-",     "-",      "-",        "-",       "-",       "-",       "-",       "-",       "-",       "deleted", "-", "-", "-"],
    "reconcile:stuck": ["-",    "error",  "-",        "error",   "-",       "error",   "error",   "-",       "-",       "-",      "-", "error", "error"],
    "host:running":  ["-",      "-",      "running",  "-",       "running", "-",       "-",       "running", "running", "-",      "-", "-", "-"],
    "host:shutoff":  ["-",      "-",      "stopped",  "-",       "stopped", "-",       "-",       "stopped", "stopped", "-",      "-", "-", "-"],
    "host:lost_domain": ["-",   "-",      "error",    "-",       "error",   "-",       "-",       "-",       "error",   "-",      "-", "-", "-"],
    "host:down":     ["-",      "-",      "host_down", "-",      "host_down", "-",     "-",       "host_down", "-",     "-",      "-", "-", "-"],
    "resize":        ["-",      "-",      "resizing", "-",       "-",       "-",       "-",       "-",       "-",       "-",      "-", "-", "-"],
    "migrate":       ["-",      "-",      "migrating", "-",      "migrating", "-",     "-",       "-",       "-",       "-",      "-", "-", "-"],
    "saga:migrated_running": ["-", "-",   "-",        "-",       "-",       "-",       "-",       "-",       "-",       "-",      "-", "-", "running"],
    "saga:migrated_stopped": ["-", "-",   "-",        "-",       "-",       "-",       "-",       "-",       "-",       "-",      "-", "-", "stopped"],
    "saga:migrated_broken":  ["-", "-",   "-",        "-",       "-",       "-",       "-",       "-",       "-",       "-",      "-", "-", "error"],
}
# Properties of each state: holds host resources, keeps its name, metadata service answers it.
PROPERTIES = {
    "pending": (False, True, False), "building": (True, True, True), "running": (True, True, True),
    "stopping": (True, True, True), "stopped": (True, True, False), "starting": (True, True, True),
    "rebooting": (True, True, True), "error": (True, True, False), "host_down": (True, True, False),
    "deleting": (True, True, False), "deleted": (False, False, False), "resizing": (True, True, False),
    "migrating": (True, True, True),
}

# What each state counts against the quota: instances, compute (vcpus and memory_mib of its flavor).
QUOTA = {
    "pending": (True, True), "building": (True, True), "running": (True, True), "stopping": (True, True),
    "stopped": (True, False), "starting": (True, True), "rebooting": (True, True), "error": (True, False),
    "host_down": (True, True), "deleting": (False, False), "deleted": (False, False), "resizing": (True, True),
    "migrating": (True, True),
}


def test_every_state_and_action_is_in_the_table():
    assert sorted(states.STATES) == sorted(ALL_STATES)
    assert sorted(states.ACTIONS) == sorted(EXPECTED)


@pytest.mark.parametrize("action", sorted(EXPECTED))
@pytest.mark.parametrize("state", ALL_STATES)
def test_transition_table(state, action):
    expected = EXPECTED[action][ALL_STATES.index(state)]
    assert states.target(action, state) == (None if expected == "-" else expected)


@pytest.mark.parametrize("state", ALL_STATES)
def test_state_properties(state):
    s = states.state(state)
    assert (s.holds_host_resources, s.keeps_name, s.metadata_visible) == PROPERTIES[state]
    assert (s.counts_instance_quota, s.uses_compute_quota) == QUOTA[state]


@pytest.mark.parametrize("action", ["stop", "start", "reboot"])
@pytest.mark.parametrize("state", ALL_STATES)
def test_user_power_requests_from_every_state(session, state, action):
    inst = new_instance(session)
    session.execute(update(Instance).where(Instance.id == inst.id).values(state=state, host="h1"))
    session.commit()
    expected = EXPECTED[action][ALL_STATES.index(state)]
    if state == "deleted":
        with pytest.raises(Exception) as err:
            lifecycle.request_power(session, ACTOR, inst.id, action, limits_of())
        assert type(err.value).__name__ == "NotFound"
    elif state == states.UNDER_WAY[action]:
        assert lifecycle.request_power(session, ACTOR, inst.id, action, limits_of()) == (inst, False)
    elif expected == "-":
        with pytest.raises(Conflict) as err:
            lifecycle.request_power(session, ACTOR, inst.id, action, limits_of())
        assert f"is {state}" in err.value.fields["state"][0]
        assert session.get(Instance, inst.id).state == state
    else:
        instance, requested = lifecycle.request_power(session, ACTOR, inst.id, action, limits_of())
        assert requested and instance.state == expected


@pytest.mark.parametrize("state", [s for s in ALL_STATES if s != "deleted"])
def test_delete_from_every_state_ends_deleted_with_nothing_left(session, state):
    """The instance is made for real on the fakes (so it owns a domain, disk and address), put in
    `state`, deleted; the delete saga (or, for pending, the request itself) ends in `deleted`."""
    cloud = FakeCloud()
    inst = new_instance(session) if state == "pending" else running_instance(session, cloud)
    session.execute(update(Instance).where(Instance.id == inst.id).values(state=state))
    session.commit()
    instance = lifecycle.request_delete(session, ACTOR, inst.id)
    assert instance.state == ("deleted" if state == "pending" else "deleting")
    if instance.state == "deleting":
        assert saga.run_delete(session, inst.id, cloud.peers, lambda: NOW) == "deleted"
    assert session.get(Instance, inst.id).state == "deleted"
    assert cloud.empty(), (cloud.addresses, cloud.disks, cloud.domains)


def test_a_request_that_is_not_allowed_names_the_current_state():
    with pytest.raises(Conflict) as err:
        states.require("start", "running")
    assert str(err.value) == "cannot start an instance that is running"
    assert err.value.fields == {"state": ["is running; start needs stopped"]}
