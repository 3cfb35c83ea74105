"""SSH endpoint forwarding: 127.0.0.1:<port> in the test's namespace -> a server inside a network
namespace the test creates (an echo server standing in for a guest's sshd)."""
import socket
import time

import eventlet
import pytest

from hostagent.port_forward import PortForwarder, connect_in_namespace, parse_port_range
from tests.hostagent.netutil import add_address, echo_server

GUEST = "10.250.0.7"
GUEST_PORT = 2222


@pytest.fixture
def guest(netns):
    add_address(netns, f"{GUEST}/24")
    server, listener = echo_server(netns, (GUEST, GUEST_PORT))
    yield netns
    server.kill()
    listener.close()


@pytest.fixture
def forwarder(guest):
    made = PortForwarder(connect_in_namespace(guest), "22900-22949")
    yield made
    made.stop_all()


def talk(port, message=b"hello"):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(message)
        client.shutdown(socket.SHUT_WR)  # the half-close must reach the guest and come back
        data = b""
        while chunk := client.recv(4096):
            data += chunk
    return data


def test_forward_reaches_the_server_inside_the_namespace(forwarder):
    port = forwarder.ensure("i-1", GUEST, guest_port=GUEST_PORT)
    assert 22900 <= port <= 22949 and forwarder.port_of("i-1") == port
    assert talk(port) == b"echo:hello"
    assert talk(port, b"x" * 200000).count(b"x") == 200000  # big transfers in both directions
    # The same request again (at-least-once RPC): same port, same forward.
    assert forwarder.ensure("i-1", GUEST, guest_port=GUEST_PORT) == port


def test_ports_are_distinct_and_skip_ports_in_use(forwarder):
    squatter = socket.socket()
    # REUSEADDR: an earlier test's connection may leave 22900 in TIME_WAIT; listening still takes it.
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", 22900))  # someone else's port in our range
    squatter.listen(1)
    try:
        first = forwarder.ensure("i-1", GUEST, guest_port=GUEST_PORT)
        second = forwarder.ensure("i-2", GUEST, guest_port=GUEST_PORT)
        assert 22900 not in (first, second) and first != second
    finally:
        squatter.close()


def test_recorded_port_is_reused(forwarder):
    assert forwarder.ensure("i-1", GUEST, 22940, guest_port=GUEST_PORT) == 22940
    assert talk(22940) == b"echo:hello"


def test_stop_closes_the_port_and_open_sessions(forwarder):
    port = forwarder.ensure("i-1", GUEST, guest_port=GUEST_PORT)
    session = socket.create_connection(("127.0.0.1", port), timeout=5)
    session.sendall(b"ping")
    assert session.recv(100) == b"echo:ping"
    assert forwarder.stop("i-1") is True and forwarder.stop("i-1") is False
    assert forwarder.port_of("i-1") is None
    assert session.recv(100) == b""  # the session was ended
    session.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


def test_unreachable_guest_closes_the_client_after_the_patience(guest):
    impatient = PortForwarder(connect_in_namespace(guest), "22950-22959", patience=0.5)
    try:
        port = impatient.ensure("i-down", GUEST, guest_port=2223)  # nothing listens on 2223
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            assert client.recv(100) == b""
        assert 0.5 <= time.monotonic() - started < 3
    finally:
        impatient.stop_all()


def test_client_connecting_before_the_guest_listens_is_joined_when_it_does(forwarder, guest):
    """A user's ssh started while the guest boots waits instead of failing."""
    port = forwarder.ensure("i-late", GUEST, guest_port=2224)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        eventlet.sleep(0.6)  # the guest is still booting: nothing listens yet
        thread, server = echo_server(guest, (GUEST, 2224))
        try:
            client.sendall(b"hello")
            client.settimeout(5)
            assert client.recv(100) == b"echo:hello"
        finally:
            thread.kill()
            server.close()


def test_client_that_speaks_first_is_still_joined(forwarder, guest):
    """An SSH client sends its version line at once, before the guest listens: what it sent
    waits in the forward and reaches the guest when it is up."""
    port = forwarder.ensure("i-eager", GUEST, guest_port=2225)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(b"SSH-2.0-eager")
        eventlet.sleep(0.3)
        thread, server = echo_server(guest, (GUEST, 2225))
        try:
            client.settimeout(5)
            assert client.recv(100) == b"echo:SSH-2.0-eager"
        finally:
            thread.kill()
            server.close()


def test_client_that_gives_up_is_let_go(guest):
    """A client polling with short timeouts must not leave retry loops behind: once it closed,
    the forward stops trying the guest for it."""
    attempts = []

    def counting_connect(target, timeout):
        attempts.append(time.monotonic())
        return connect_in_namespace(guest)(target, timeout)

    forwarder = PortForwarder(counting_connect, "22960-22969")
    try:
        port = forwarder.ensure("i-poll", GUEST, guest_port=2226)  # nothing listens on 2226
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            eventlet.sleep(0.3)
        assert attempts, "the forward should have tried the guest while the client waited"
        eventlet.sleep(0.2)  # one retry interval and one connect timeout, with room
        settled = len(attempts)
        eventlet.sleep(0.5)
        assert len(attempts) == settled
    finally:
        forwarder.stop_all()


def test_port_range_parsing():
    assert parse_port_range("22000-22999") == (22000, 22999)
    assert parse_port_range("2200") == (2200, 2200)
    with pytest.raises(ValueError):
        parse_port_range("9-1")
