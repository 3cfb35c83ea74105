"""Stop and reboot: ask the guest (ACPI), give it time, then force.

These run on a greenthread and wait with eventlet.sleep between libvirt calls (each call runs in a
native thread through HypervisorConnection.run), so a guest taking 20 s to shut down never stalls
the agent's other work.
"""
import logging
import time

import eventlet
from eventlet.queue import Empty

from hostagent import domains

POLL_INTERVAL_S = 0.2
# The ACPI button is pressed again this often: a guest that was still booting when the first
# press came (no acpid yet) would otherwise ignore the request for the whole timeout.
REPRESS_INTERVAL_S = 5.0
INACTIVE_STATES = ("shutoff", "crashed")

log = logging.getLogger(__name__)


def stop(hypervisor, instance_id, timeout):
    """ACPI shutdown, up to `timeout` s for the guest to power off, then destroy. Returns the
    domain's state (shutoff); stopping a stopped domain changes nothing."""
    state = hypervisor.run(domains.request_shutdown, instance_id)
    deadline = time.monotonic() + timeout
    next_press = time.monotonic() + REPRESS_INTERVAL_S
    while state["state"] not in INACTIVE_STATES and time.monotonic() < deadline:
        eventlet.sleep(POLL_INTERVAL_S)
        if time.monotonic() >= next_press:
            state = hypervisor.run(domains.request_shutdown, instance_id)
            next_press = time.monotonic() + REPRESS_INTERVAL_S
        else:
            state = hypervisor.run(domains.domain_state, instance_id)
    if state["state"] not in INACTIVE_STATES:
        log.warning("domain %s ignored ACPI shutdown for %s s: destroying it", instance_id, timeout)
        state = hypervisor.run(domains.power_off, instance_id)
    return state


def reboot(hypervisor, domain_events, instance_id, timeout):
    """ACPI reboot; if no sign of the guest acting on it comes within `timeout` s, destroy and
    start. A stopped domain is simply started."""
    state = hypervisor.run(domains.domain_state, instance_id)
    if state["state"] in INACTIVE_STATES:
        return hypervisor.run(domains.start_domain, instance_id)
    with domain_events.watch(instance_id) as events:
        hypervisor.run(domains.request_reboot, instance_id)
        if _acted_on_reboot(events, timeout):
            return hypervisor.run(domains.start_domain, instance_id)  # running again (or made so)
    log.warning("domain %s ignored ACPI reboot for %s s: destroying and starting it", instance_id, timeout)
    hypervisor.run(domains.power_off, instance_id)
    return hypervisor.run(domains.start_domain, instance_id)


def _acted_on_reboot(events, timeout):
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            event = events.get(timeout=remaining)
        except Empty:
            return False
        # libvirt reports a reboot, or a lifecycle change: the guest shut down (libvirt then
        # restarts it, on_reboot=restart) or powered off.
        if event.kind in ("reboot", "lifecycle"):
            return True
