"""Domain lifecycle events, from libvirt's callbacks to nameko workers.

libvirt calls our callbacks on its native event-loop thread (hypervisor.py starts it). They only
record the event and hand it over (handoff.py); a greenthread then fans it out to subscribers:
- the `domain_lifecycle_handler` entrypoint, which runs one worker per state change of a labcloud
  domain, in order (the service method dispatches the `domain_lifecycle` event);
- short-lived watchers (`DomainEvents.watch`), e.g. a reboot waiting for the guest to act.
Callbacks are registered on every connection the agent opens, so they survive a libvirtd restart.
"""
import collections
import contextlib
import logging

import eventlet
import libvirt
from eventlet.event import Event
from eventlet.queue import LightQueue
from nameko.extensions import DependencyProvider, Entrypoint, SharedExtension

from common.clock import utcnow
from hostagent import domains
from hostagent.handoff import NativeHandoff
from hostagent.hypervisor import HostConnection
from hostagent.sequence import next_seq

log = logging.getLogger(__name__)

# How often a dead connection is reopened (and callbacks registered again) when nothing else
# touches libvirt.
WATCHDOG_INTERVAL_S = 5

DomainEvent = collections.namedtuple("DomainEvent", "kind instance_id state at seq", defaults=(None,))
"""kind: 'lifecycle' or 'reboot'; state: the domain state it entered, or None when the event is
not a state change (defined, undefined, the guest shutting down, a reboot); seq: next_seq() taken
in libvirt's callback, so events are numbered in the order libvirt reported them."""

_LIFECYCLE_STATES = {
    libvirt.VIR_DOMAIN_EVENT_STARTED: "running",
    libvirt.VIR_DOMAIN_EVENT_RESUMED: "running",
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: "paused",
    libvirt.VIR_DOMAIN_EVENT_STOPPED: "shutoff",
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: "pmsuspended",
    libvirt.VIR_DOMAIN_EVENT_CRASHED: "crashed",
}


def lifecycle_state(event, detail):
    """The state a lifecycle event moves the domain to, or None if it is no state change."""
    if event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
        if detail == libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED:
            return "crashed"
        if detail == libvirt.VIR_DOMAIN_EVENT_STOPPED_MIGRATED:
            return None  # it runs on another host now: not stopped
    return _LIFECYCLE_STATES.get(event)


class DomainEventBridge(SharedExtension):
    """Registers libvirt's domain callbacks and fans their events out to greenthread subscribers.
    Subscribers are called on the bridge's greenthread and must not block (put into a queue)."""

    host = HostConnection()

    def setup(self):
        self._handoff = NativeHandoff()
        self._subscribers = []
        self._callback_ids = {}  # id(raw connection) -> callback ids, to deregister on close

    def start(self):
        # In start, not setup: HostConnection.setup (which makes the connection) has run by now.
        self.host.connection.add_open_hook(self._register, self._deregister)
        self._pump_gt = self.container.spawn_managed_thread(self._pump, "domain-event-pump")
        self._watchdog_gt = self.container.spawn_managed_thread(self._watchdog, "libvirt-watchdog")

    def stop(self):
        self._watchdog_gt.kill()
        self._pump_gt.kill()
        self._handoff.close()

    kill = stop

    def subscribe(self, callback):
        self._subscribers.append(callback)

    def unsubscribe(self, callback):
        with contextlib.suppress(ValueError):
            self._subscribers.remove(callback)

    # --- native threads -----------------------------------------------------------------------
    def _register(self, raw):
        self._callback_ids[id(raw)] = [
            raw.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None),
            raw.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_REBOOT, self._on_reboot, None),
        ]

    def _deregister(self, raw):
        for callback_id in self._callback_ids.pop(id(raw), []):
            raw.domainEventDeregisterAny(callback_id)

    def _on_lifecycle(self, _conn, domain, event, detail, _opaque):
        # UUIDString() reads the local object: no call to libvirtd from the event loop thread.
        self._handoff.put(DomainEvent("lifecycle", domain.UUIDString(),
                                      lifecycle_state(event, detail), utcnow(), next_seq()))

    def _on_reboot(self, _conn, domain, _opaque):
        self._handoff.put(DomainEvent("reboot", domain.UUIDString(), None, utcnow(), next_seq()))

    # --- greenthreads ---------------------------------------------------------------------------
    def _pump(self):
        while True:
            for event in self._handoff.get_batch():
                for subscriber in list(self._subscribers):
                    try:
                        subscriber(event)
                    except Exception:  # noqa: BLE001  (one bad subscriber must not stop the others)
                        log.exception("domain event subscriber %r failed", subscriber)

    def _watchdog(self):
        while True:
            try:
                self.host.connection.ensure_open()
            except Exception as exc:  # noqa: BLE001  (a down libvirtd is retried, not fatal)
                log.warning("libvirt unreachable, lifecycle events paused: %s", exc)
            eventlet.sleep(WATCHDOG_INTERVAL_S)


class DomainLifecycleEntrypoint(Entrypoint):
    """`@domain_lifecycle_handler`: the method gets `{instance_id, state, at, seq}` for every state change
    of a labcloud domain, one worker at a time so listeners see the changes in order."""

    bridge = DomainEventBridge()

    def setup(self):
        self._queue = LightQueue()
        self._managed = set()  # instance ids known to be labcloud's (a UUID never changes owner)

    def start(self):
        self.bridge.subscribe(self._queue.put)
        self._gt = self.container.spawn_managed_thread(self._run, "domain-lifecycle")

    def stop(self):
        self.bridge.unsubscribe(self._queue.put)
        self._gt.kill()

    kill = stop

    def _run(self):
        while True:
            event = self._queue.get()
            if event.kind != "lifecycle" or not self._is_managed(event.instance_id):
                continue
            if event.state is not None:
                self._handle(event)

    def _is_managed(self, instance_id):
        """Asked for every event, including 'defined', so a domain that is destroyed and undefined
        right after its last state change is still known to be ours when that change is handled."""
        if instance_id in self._managed:
            return True
        try:
            managed = self.bridge.host.connection.run(domains.is_managed_id, instance_id)
        except Exception as exc:  # noqa: BLE001
            log.warning("cannot tell whether domain %s is labcloud's: %s", instance_id, exc)
            return False
        if managed:
            self._managed.add(instance_id)
        return managed

    def _handle(self, event):
        done = Event()

        def handle_result(_worker_ctx, result, exc_info):
            done.send()
            return result, exc_info

        payload = {"instance_id": event.instance_id, "state": event.state, "at": event.at,
                   "seq": event.seq}
        self.container.spawn_worker(self, (payload,), {}, handle_result=handle_result)
        done.wait()


domain_lifecycle_handler = DomainLifecycleEntrypoint.decorator


class DomainEvents(DependencyProvider):
    """Lets a worker wait for events of one domain: `with self.domain_events.watch(id) as events:`
    then `events.get(timeout=...)` returns DomainEvents (eventlet.queue.Empty on timeout)."""

    bridge = DomainEventBridge()

    def get_dependency(self, worker_ctx):
        return self

    @contextlib.contextmanager
    def watch(self, instance_id):
        events = LightQueue()

        def deliver(event):
            if event.instance_id == instance_id:
                events.put(event)
        self.bridge.subscribe(deliver)
        try:
            yield events
        finally:
            self.bridge.unsubscribe(deliver)
