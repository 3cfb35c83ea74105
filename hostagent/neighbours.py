"""Static neighbour (ARP) entries for guests on the host's bridge.

The agent knows each guest's MAC and IP before it boots. Without a static entry, the first packet
towards a booting guest (an SSH connection through its endpoint) waits for ARP, whose retries come
a second apart: pinning the entry removes that wait and the ARP traffic."""
from common import netns


def pin(namespace, bridge, ip, mac):
    netns.run(namespace, ["ip", "neigh", "replace", ip, "lladdr", mac, "dev", bridge, "nud", "permanent"])


def unpin(namespace, bridge, ip):
    # Gone already is fine: destroy is idempotent.
    netns.run(namespace, ["ip", "neigh", "del", ip, "dev", bridge], check=False)
