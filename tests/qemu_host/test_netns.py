"""Sockets opened inside a host's network namespace, used from the machine's own namespace."""
import os
import socket

import pytest

from common import netns

pytestmark = pytest.mark.realguest


def own_netns():
    return os.readlink("/proc/thread-self/ns/net")


def test_socket_in_netns_reaches_addresses_only_there(host):
    before = own_netns()
    listener = netns.socket_in_netns(host.netns, socket.AF_INET, socket.SOCK_STREAM)
    try:
        # The metadata address exists only on the namespace's bridge.
        listener.bind(("169.254.169.254", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        client = netns.connect_in_netns(host.netns, ("169.254.169.254", port), timeout=5)
        server, _ = listener.accept()
        with client, server:
            client.sendall(b"ping")
            assert server.recv(4) == b"ping"
    finally:
        listener.close()
    assert own_netns() == before  # setns() happened in the helper's thread only
    with pytest.raises(OSError):
        # Not reachable from here: the address does not exist in the machine's namespace.
        socket.create_connection(("169.254.169.254", port), timeout=1)


def test_socket_in_missing_netns_raises():
    with pytest.raises(OSError):
        netns.socket_in_netns("lc-no-such-namespace")
