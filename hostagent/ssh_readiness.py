"""SSH readiness: after a start leaves a guest running, the agent probes its SSH (ssh_probe.py)
and reports the moment it answers with the `domain_ssh_ready` event.

Probes are greenthreads of the container (never an RPC worker waiting for a guest to boot), at most
one per instance: a new start replaces the running probe, stop and destroy cancel it. A probe that
runs out of time (SSH_READY_TIMEOUT) logs a warning and reports nothing.

- `SshProbes` (shared by the entrypoint and the dependency) owns the probes;
- `SshReadiness` injects it into workers (None when the host has no HOST_NETNS: nothing to reach);
- `@ssh_ready_handler` runs a worker per guest whose SSH answered, which dispatches the event.
"""
import functools
import logging

import eventlet
from nameko.extensions import DependencyProvider, Entrypoint, SharedExtension

from common.clock import utcnow
from hostagent import ssh_probe
from hostagent.port_forward import connect_in_namespace
from hostagent.sequence import next_seq

log = logging.getLogger(__name__)

DEFAULT_READY_TIMEOUT_S = 300.0


class ProbeRunner:
    """Probes per instance. `spawn(fn)` starts a greenthread; `on_ready({instance_id, at, seq})`
    is called (on the probe's greenthread) when an instance's SSH answered."""

    def __init__(self, connect, timeout_s, spawn, on_ready, wait_for_ssh=ssh_probe.wait_for_ssh):
        self.connect, self.timeout_s, self.spawn, self.on_ready = connect, timeout_s, spawn, on_ready
        self._wait_for_ssh = wait_for_ssh
        self._probes = {}  # instance_id -> greenthread

    def start(self, instance_id, ip):
        self.cancel(instance_id)
        self._probes[instance_id] = self.spawn(functools.partial(self._probe, instance_id, ip))

    def cancel(self, instance_id):
        """True when a probe was running."""
        probe = self._probes.pop(instance_id, None)
        if probe is None:
            return False
        probe.kill()
        return True

    def cancel_all(self):
        for instance_id in list(self._probes):
            self.cancel(instance_id)

    def probing(self):
        return set(self._probes)

    def _probe(self, instance_id, ip):
        try:
            answered = self._wait_for_ssh(self.connect, (ip, ssh_probe.GUEST_SSH_PORT), self.timeout_s)
            if answered:
                self.on_ready({"instance_id": instance_id, "at": utcnow(), "seq": next_seq()})
            else:
                log.warning("SSH of %s (%s) did not answer within %s s", instance_id, ip, self.timeout_s)
        except Exception:  # noqa: BLE001  (a managed thread's error would kill the container)
            log.exception("SSH probe of %s failed", instance_id)
        finally:
            # A cancelled or replaced probe is no longer (or another one is) in the map.
            if self._probes.get(instance_id) is eventlet.getcurrent():
                del self._probes[instance_id]


class SshProbes(SharedExtension):
    """The container's ProbeRunner (None without HOST_NETNS). Config SSH_READY_TIMEOUT (300 s)."""

    def setup(self):
        config = self.container.config
        netns = config.get("HOST_NETNS") or ""
        self._listeners = []
        self.runner = None
        if netns:
            timeout = float(config.get("SSH_READY_TIMEOUT") or DEFAULT_READY_TIMEOUT_S)
            self.runner = ProbeRunner(connect_in_namespace(netns), timeout, self._spawn, self._ready)

    def subscribe(self, listener):
        self._listeners.append(listener)

    def unsubscribe(self, listener):
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _spawn(self, fn):
        return self.container.spawn_managed_thread(fn, "ssh-probe")

    def _ready(self, ready):
        for listener in list(self._listeners):
            listener(ready)

    def stop(self):
        if self.runner is not None:
            self.runner.cancel_all()

    kill = stop


class SshReadiness(DependencyProvider):
    """Injects the host's ProbeRunner: `start(instance_id, ip)`, `cancel(instance_id)`; None when
    the host has no namespace to reach guests in."""

    probes = SshProbes()

    def get_dependency(self, worker_ctx):
        return self.probes.runner


class SshReadyEntrypoint(Entrypoint):
    """`@ssh_ready_handler`: the method gets `{instance_id, at, seq}` when a guest's SSH answered."""

    probes = SshProbes()

    def start(self):
        # In start, not setup: the shared SshProbes may be set up after this entrypoint.
        self.probes.subscribe(self._handle)

    def stop(self):
        self.probes.unsubscribe(self._handle)

    kill = stop

    def _handle(self, ready):
        self.container.spawn_worker(self, (ready,), {})


ssh_ready_handler = SshReadyEntrypoint.decorator
