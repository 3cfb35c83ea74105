"""Talking to host agents. Every host agent serves RPC on its own queue (`hostagent_<host>`),
and all of them publish events under the one source name `hostagent`, so listeners need not know
which hosts exist."""
import re

from nameko.rpc import RpcProxy, ServiceProxy

HOST_EVENT_SOURCE = "hostagent"
HOST_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")


def host_service_name(host):
    if not HOST_NAME_PATTERN.match(host or ""):
        raise ValueError(f"invalid host name {host!r}")
    return f"hostagent_{host}"


class HostAgentRpc(RpcProxy):
    """RPC to one host's agent, chosen per call: `self.hosts("h1").create_domain(spec)`.

    Hosts come and go, so the target queue is not known when the service class is declared.
    """

    def __init__(self, **options):
        super().__init__(target_service=None, **options)

    def get_dependency(self, worker_ctx):
        def for_host(host):
            return ServiceProxy(worker_ctx, host_service_name(host), self.rpc_reply_listener,
                                **self.options)
        return for_host
