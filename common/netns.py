"""Named network namespaces (`ip netns`) and sockets opened inside them.

A socket belongs to the network namespace it was created in, for its whole life. So code in the
machine's own namespace reaches a guest on a bridge inside a namespace by creating the socket
there: a short-lived native thread enters the namespace with setns(2) (which only moves the calling
thread), creates the socket and exits; the caller then uses the socket as any other.
"""
import _socket
import ctypes
import ctypes.util
import os
import socket
import subprocess
import sys

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def netns_path(name):
    return os.path.join(NETNS_DIR, name)


def exists(name):
    return os.path.exists(netns_path(name))


def create(name):
    """Create the namespace with its loopback up. An existing one of that name is kept."""
    if not exists(name):
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, text=True)
    run(name, ["ip", "link", "set", "lo", "up"])


def delete(name):
    """Delete the namespace; a missing one is fine (delete is used to clean up after crashes)."""
    if exists(name):
        subprocess.run(["ip", "netns", "del", name], check=True, capture_output=True, text=True)


def nsenter_argv(name):
    """Prefix that runs a command inside the namespace. Not `ip netns exec`: that also remounts
    /sys, which hides the cgroup mounts libvirt needs for CPU stats."""
    return ["nsenter", f"--net={netns_path(name)}"]


def run(name, argv, check=True, timeout=30, input=None):
    return subprocess.run(nsenter_argv(name) + list(argv), check=check, capture_output=True,
                          text=True, timeout=timeout, input=input)


def _native_threading():
    # Under eventlet's monkey patching `threading.Thread` is a greenthread that shares the OS thread
    # with the whole hub: setns() there would move every greenthread into the namespace.
    if "eventlet" in sys.modules:
        from eventlet import patcher
        return patcher.original("threading")
    import threading
    return threading


def socket_in_netns(name, family=socket.AF_INET, type=socket.SOCK_STREAM, proto=0):
    """A socket created inside namespace `name`, usable from the caller's thread and namespace
    (a green socket when the caller runs under eventlet's patching)."""
    result = {}

    def create_there():
        try:
            with open(netns_path(name), "rb") as ns:
                if _libc.setns(ns.fileno(), CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({name}): {os.strerror(err)}")
            # The C-level socket type is never monkey-patched, so nothing green runs in this
            # thread; only the descriptor leaves it and the caller wraps it in its own class.
            result["fd"] = _socket.socket(family, type, proto).detach()
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    thread = _native_threading().Thread(target=create_there, name=f"netns-{name}", daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return socket.socket(family, type, proto, fileno=result["fd"])


def connect_in_netns(name, address, timeout=5.0):
    """A TCP connection to `address` (ip, port) as seen from inside namespace `name`."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    sock = socket_in_netns(name, family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(tuple(address))
    except BaseException:
        sock.close()
        raise
    return sock
