"""The instance state machine: every state, what it means, and every allowed transition.

This is the only place that lists instance states. Everything else (requests, sagas, the scheduler,
the metadata service, reconcile, quotas) asks this module: which states hold host resources, keep the
name, are visible to the metadata service, count against which quota, what `delete` does from a
state, and where an action leads.

Three kinds of actions move an instance:
- user requests (create, stop, start, reboot, delete): a request that is not allowed is a 409
  naming the current state;
- saga steps (the work the request started, carried out by event handlers);
- host observations (libvirt lifecycle events, reconcile's inventory, heartbeats), which keep the
  state true to what the host reports.
"""
from dataclasses import dataclass

from common.errors import Conflict

# What `delete` does from a state.
DELETE_AT_ONCE = "at_once"        # nothing was made anywhere yet: `deleted` right away
DELETE_TEARDOWN = "teardown"      # `deleting`; the delete saga removes everything, then `deleted`
DELETE_UNDER_WAY = "under_way"    # already deleting (or deleted): asking again changes nothing


@dataclass(frozen=True)
class State:
    name: str
    description: str
    holds_host_resources: bool   # counted against its host's memory and vCPUs by the scheduler
    keeps_name: bool             # no other instance of the owner may take its name
    metadata_visible: bool       # the metadata service answers its guest
    on_delete: str
    correctable: bool            # no saga works on it: host reports and reconcile may correct it
    counts_instance_quota: bool  # counted against its project's (and owner's) `instances` quota
    uses_compute_quota: bool     # its flavor's vcpus and memory_mib count against the quota


# Columns after the description: holds host resources, keeps name, metadata visible, on delete,
# correctable, counts against the instances quota, uses compute (vcpus, memory_mib) quota.
# A stopped or failed guest uses no CPU or memory, so it keeps only its place in the instances quota;
# a host_down guest may still run, so it keeps both.
STATES = {s.name: s for s in (
    State("pending", "recorded, waiting for the create saga",
          False, True, False, DELETE_AT_ONCE, False, True, True),
    State("building", "host chosen; address, disk and domain being made",
          True, True, True, DELETE_TEARDOWN, False, True, True),
    State("running", "the guest runs",
          True, True, True, DELETE_TEARDOWN, True, True, True),
    State("stopping", "the guest was asked to power off",
          True, True, True, DELETE_TEARDOWN, False, True, True),
    State("stopped", "powered off; disk, address and domain kept",
          True, True, False, DELETE_TEARDOWN, True, True, False),
    State("starting", "the guest is being started",
          True, True, True, DELETE_TEARDOWN, False, True, True),
    State("rebooting", "the guest is being rebooted",
          True, True, True, DELETE_TEARDOWN, False, True, True),
    State("resizing", "stopped, given its new flavor's size and started again (resize.py)",
          True, True, False, DELETE_TEARDOWN, False, True, True),
    State("migrating", "moving to the host `migrating_to` names, live or stopped (migrate.py)",
          True, True, True, DELETE_TEARDOWN, False, True, True),
    State("error", "something failed; `reason` says what. Delete cleans up",
          True, True, False, DELETE_TEARDOWN, True, True, False),
    State("host_down", "its host stopped sending heartbeats; shown until the host returns",
          True, True, False, DELETE_TEARDOWN, True, True, True),
    State("deleting", "everything on the host and the address are being removed",
          True, True, False, DELETE_UNDER_WAY, False, False, False),
    State("deleted", "gone; nothing is left on any host",
          False, False, False, DELETE_UNDER_WAY, False, False, False),
)}

# (action, from state) -> to state. Actions: user requests, saga steps (`saga:`), host
# observations (`host:`). Anything not listed is not allowed.
TRANSITIONS = {}


def _allow(action, sources, target):
    for source in sources:
        TRANSITIONS[(action, source)] = target


# user requests
_allow("stop", ["running"], "stopping")
_allow("start", ["stopped"], "starting")
_allow("reboot", ["running"], "rebooting")
_allow("resize", ["running"], "resizing")   # only a resize that needs a restart; the others keep the state
_allow("migrate", ["running", "stopped"], "migrating")   # admins (policy instance:migrate)
_allow("delete", [s.name for s in STATES.values() if s.on_delete == DELETE_AT_ONCE], "deleted")
_allow("delete", [s.name for s in STATES.values() if s.on_delete == DELETE_TEARDOWN], "deleting")
# saga steps
_allow("saga:schedule", ["pending", "building"], "building")   # building: a redelivered create
_allow("saga:built", ["building"], "running")
_allow("saga:fail", ["pending", "building"], "error")
# A power saga ends where the host's newest report puts the guest (a stop whose guest came back
# on ends `running`): see instance_store.finish_power.
_allow("saga:powered_on", ["stopping", "starting", "rebooting", "resizing"], "running")
_allow("saga:powered_off", ["stopping", "starting", "rebooting", "resizing"], "stopped")
_allow("saga:power_failed", ["stopping", "starting", "rebooting", "resizing"], "error")
_allow("saga:torn_down", ["deleting"], "deleted")
# A migration ends where the guest is (on the destination, or back on the source after a
# failure), running or stopped as it was.
_allow("saga:migrated_running", ["migrating"], "running")
_allow("saga:migrated_stopped", ["migrating"], "stopped")
_allow("saga:migrated_broken", ["migrating"], "error")   # on the destination, a later step failed
# reconcile: a saga that never finished (its worker died and nothing redelivered it)
_allow("reconcile:stuck", ["building", "stopping", "starting", "rebooting", "resizing", "migrating"], "error")
# host observations: applied only when newer than the newest one recorded (`host_seq`); `error` is
# corrected only by reconcile, which knows the domain still exists.
_allow("host:running", ["running", "stopped", "error", "host_down"], "running")
_allow("host:shutoff", ["running", "stopped", "error", "host_down"], "stopped")
_allow("host:lost_domain", ["running", "stopped", "host_down"], "error")
_allow("host:down", ["running", "stopped", "error"], "host_down")

USER_ACTIONS = ("stop", "start", "reboot", "resize", "migrate", "delete")
# Resource shares (shares.py) change in these states: on the running guest and its definition, or
# on the definition of a stopped one. Elsewhere a saga is at work on the domain, or there is none.
SHARES_SETTABLE = ("running", "stopped")
ACTIONS = tuple(sorted({action for action, _ in TRANSITIONS}))
# A user request made twice while the first is under way answers with the instance as it is.
UNDER_WAY = {"stop": "stopping", "start": "starting", "reboot": "rebooting", "resize": "resizing",
             "migrate": "migrating"}


def state(name):
    return STATES[name]


def target(action, current):
    """Where `action` leads from `current`, or None when it is not allowed."""
    return TRANSITIONS.get((action, current))


def sources(action):
    """The states `action` may start from."""
    return tuple(sorted(source for (a, source) in TRANSITIONS if a == action))


def require(action, current):
    """The target of a user request; 409 naming the current state when it is not allowed."""
    to = target(action, current)
    if to is None:
        allowed = " or ".join(sources(action)) or "never"
        raise Conflict(f"cannot {action} an instance that is {current}",
                       {"state": [f"is {current}; {action} needs {allowed}"]})
    return to


def require_shares_settable(current):
    if current not in SHARES_SETTABLE:
        allowed = " or ".join(SHARES_SETTABLE)
        raise Conflict(f"cannot change the resources of an instance that is {current}",
                       {"state": [f"is {current}; changing resources needs {allowed}"]})


def names_where(**properties):
    """Names of the states whose properties all have the given values, in a stable order."""
    return tuple(name for name, s in STATES.items()
                 if all(getattr(s, key) == value for key, value in properties.items()))


HOLDS_HOST_RESOURCES = names_where(holds_host_resources=True)
KEEPS_NAME = names_where(keeps_name=True)
METADATA_VISIBLE = names_where(metadata_visible=True)
CORRECTABLE = names_where(correctable=True)
COUNTS_INSTANCE_QUOTA = names_where(counts_instance_quota=True)
USES_COMPUTE_QUOTA = names_where(uses_compute_quota=True)
# A saga works on these: if one stays this long, reconcile looks (see reconcile.py).
IN_PROGRESS = tuple(name for name in names_where(correctable=False) if name != "deleted")
LIVE = tuple(name for name in STATES if name != "deleted")


def observed_action(domain_state):
    """The host observation for a domain state reported by a host agent (`missing`: reconcile found
    no domain), or None when the state says nothing we act on (paused, shutting down...)."""
    if domain_state == "missing":
        return "host:lost_domain"
    if domain_state in ("running", "blocked"):
        return "host:running"
    if domain_state in ("shutoff", "crashed"):
        return "host:shutoff"
    return None
