"""Does a guest's SSH answer? Checked from the agent, with sockets opened inside the host's network
namespace (`connect(address, timeout)`, port_forward.connect_in_namespace), so the answer does not
depend on the SSH endpoint's forward.

First the cheap banner check (an SSH server greets with `SSH-` at once; no key exchange, so
polling costs almost no CPU, which a booting TCG guest on the same cores needs), then one paramiko
key exchange to confirm a real server is behind it (no login: we hold no key).

paramiko runs on the hub: its Transport is itself a thread (a greenthread under eventlet's
patching), which cannot be moved into a native thread (greenlets cannot switch across threads).
Its socket I/O is cooperative; the exchange costs some milliseconds of CPU once per start.
"""
import socket
import time

import eventlet
import paramiko

GUEST_SSH_PORT = 22
BANNER_TIMEOUT_S = 1.0
KEX_TIMEOUT_S = 5.0
PROBE_INTERVAL_S = 0.1


def banner_seen(connect, address, timeout=BANNER_TIMEOUT_S):
    try:
        with connect(address, timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(4) == b"SSH-"
    except OSError:
        return False


def ssh_answers(connect, address, timeout=KEX_TIMEOUT_S):
    """True when an SSH server completes the key exchange at `address`."""
    sock = transport = None
    try:
        sock = connect(address, timeout)
        transport = paramiko.Transport(sock)
        transport.banner_timeout = timeout
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key() is not None
    except (paramiko.SSHException, OSError, EOFError):
        return False
    finally:
        if sock is not None:
            close_transport(transport, sock, timeout)


def close_transport(transport, sock, timeout=KEX_TIMEOUT_S):
    """End a paramiko Transport over a green socket without leaving its reader behind.

    Transport.close() closes the socket under its own thread's pending recv; eventlet keeps that
    reader registered on the descriptor number until a green socket reopens it, so the next
    subprocess pipe given that number fails ("Second simultaneous read on fileno"). Shutting the
    socket down first wakes the reader with EOF: the thread ends, then the socket is closed."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # never connected, or the peer is gone already
    if transport is not None:
        if transport.is_alive():
            transport.join(timeout)
        transport.close()
    sock.close()


def wait_for_ssh(connect, address, deadline_s, interval=PROBE_INTERVAL_S, sleep=eventlet.sleep,
                 clock=time.monotonic):
    """Poll for the banner every `interval` s, then confirm with one key exchange; False when
    SSH did not answer within `deadline_s`."""
    deadline = clock() + deadline_s
    while clock() < deadline:
        if banner_seen(connect, address) and ssh_answers(connect, address):
            return True
        sleep(interval)
    return False
