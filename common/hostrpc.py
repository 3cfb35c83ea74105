"""Talking to host agents. Every host agent serves RPC on its own queue (`hostagent_<host>`),
and all of them publish events under the one source name `hostagent`, so listeners need not know
which hosts exist."""
import re

import eventlet
from nameko.exceptions import UnknownService
from nameko.rpc import RpcProxy, ServiceProxy

from common.errors import HostOperationFailed

HOST_EVENT_SOURCE = "hostagent"
HOST_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
DEFAULT_HOST_TIMEOUT_S = 60


def host_service_name(host):
    if not HOST_NAME_PATTERN.match(host or ""):
        raise ValueError(f"invalid host name {host!r}")
    return f"hostagent_{host}"


class HostAgentRpc(RpcProxy):
    """RPC to one host's agent, chosen per call: `self.hosts("h1").create_domain(spec)`.

    Hosts come and go, so the target queue is not known when the service class is declared. Every
    call is bounded by the service's HOST_RPC_TIMEOUT (see `call_host`).
    """

    def __init__(self, **options):
        super().__init__(target_service=None, **options)
        self.timeout = DEFAULT_HOST_TIMEOUT_S

    def setup(self):
        self.timeout = float(self.container.config.get("HOST_RPC_TIMEOUT", DEFAULT_HOST_TIMEOUT_S))

    def get_dependency(self, worker_ctx):
        def for_host(host):
            proxy = ServiceProxy(worker_ctx, host_service_name(host), self.rpc_reply_listener,
                                 **self.options)
            return BoundedHost(proxy, host, self.timeout)
        return for_host


def call_host(proxy, host, method, payload=None, timeout=DEFAULT_HOST_TIMEOUT_S):
    """One RPC to a host agent, bounded: a stopped agent's queue outlives it and would swallow the
    call forever. Whatever goes wrong comes back as HostOperationFailed, except UnknownService
    (no agent ever served that host on this broker), which callers treat as "nothing there"."""
    method_proxy = getattr(proxy, method)
    try:
        with eventlet.Timeout(timeout):
            reply = method_proxy.call_async() if payload is None else method_proxy.call_async(payload)
            return reply.result()
    except eventlet.Timeout:
        raise HostOperationFailed(f"host {host}: {method} got no answer in {timeout} s") from None
    except (HostOperationFailed, UnknownService):
        raise
    except Exception as exc:  # noqa: BLE001  (a RemoteError or broker error: the host op failed)
        raise HostOperationFailed(f"host {host}: {method} failed: {exc}") from None


class BoundedHost:
    """One host's agent whose every call goes through `call_host`: bounded, errors normalised."""

    def __init__(self, proxy, host, timeout=DEFAULT_HOST_TIMEOUT_S):
        self.proxy, self.host, self.timeout = proxy, host, timeout

    def __getattr__(self, method):
        def call(payload=None):
            return call_host(self.proxy, self.host, method, payload, self.timeout)
        return call
