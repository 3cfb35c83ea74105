"""Helpers for tests that put servers inside a test's own network namespace."""
import socket

import eventlet

from common import netns


def add_address(name, cidr, dev="lab0"):
    netns.run(name, ["ip", "addr", "add", cidr, "dev", dev])


def listen_in(name, address):
    sock = netns.socket_in_netns(name, socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(16)
    return sock


def echo_server(name, address):
    """A TCP echo server inside namespace `name` (prefixes each chunk with b'echo:'); returns the
    serving greenthread and its listening socket. Kill the thread and close the socket to stop."""
    listener = listen_in(name, address)

    def serve_one(conn):
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(b"echo:" + data)

    def serve():
        while True:
            conn, _ = listener.accept()
            eventlet.spawn_n(serve_one, conn)
    return eventlet.spawn(serve), listener


def connect_from(name, source_ip, address, timeout=5):
    """A connection made inside `name` from a chosen source address (as a guest would)."""
    sock = netns.socket_in_netns(name, socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((source_ip, 0))
    sock.connect(address)
    return sock


def http_get(sock, path):
    """A minimal HTTP/1.0 GET over a connected socket: (status code, body bytes)."""
    sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n".encode())
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


_HOST_KEY = []


def ssh_server(name, address):
    """A real SSH server (paramiko, key exchange only: no login) inside namespace `name`; returns
    the serving greenthread and its listening socket, like echo_server."""
    import paramiko
    if not _HOST_KEY:
        _HOST_KEY.append(paramiko.RSAKey.generate(1024))
    listener = listen_in(name, address)

    def serve_one(conn):
        from hostagent.ssh_probe import close_transport
        transport = paramiko.Transport(conn)
        transport.add_server_key(_HOST_KEY[0])
        try:
            transport.start_server(server=paramiko.ServerInterface())
            while transport.is_active():  # until the client leaves
                eventlet.sleep(0.05)
        except (paramiko.SSHException, EOFError, OSError):
            pass
        finally:
            close_transport(transport, conn)

    def serve():
        while True:
            conn, _ = listener.accept()
            eventlet.spawn_n(serve_one, conn)
    return eventlet.spawn(serve), listener
