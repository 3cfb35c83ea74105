"""What the network service asks of the host a routed subnet is routed to (the host agent's
routed.py makes the subnet's network itself when its first guest comes)."""
import logging

from nameko.exceptions import UnknownService

from services.network.addresses import routed_network_name

log = logging.getLogger(__name__)


def remove_network(hosts_rpc, subnet):
    """The deleted routed subnet's network off its host. Never fails the delete: a host that cannot
    be reached, or that still has a guest on it, keeps it (logged)."""
    name = routed_network_name(subnet["name"])
    try:
        hosts_rpc(subnet["host"]).remove_routed_network({"name": name})
    except UnknownService:
        pass   # no agent ever served that host: nothing was made there
    except Exception as exc:  # noqa: BLE001  (the subnet is gone either way)
        log.warning("routed network %s left on host %s: %s", name, subnet["host"], exc)
