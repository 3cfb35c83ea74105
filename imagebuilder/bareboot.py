"""Boot a built image with bare qemu-system-x86_64 (no libvirt) and log in over SSH.

This is the reference for "how fast can this image boot here": QEMU user-mode networking with a
host port forwarded to the guest's port 22, a tiny metadata server on 127.0.0.1 that the guest
reaches as 10.0.2.2 (QEMU's user-mode gateway is the host's loopback), the ELF kernel booted
directly (PVH). Only loopback is used. The boot test and bench/boot_to_ssh.py's (a) side use it.

With kernel=None the guest boots from its disk (disk.qcow2: its own bootloader, no command line),
so it takes DHCP and the default metadata URL http://169.254.169.254/latest. For that URL to reach
the MetadataServer, the user-mode network is put on the link-local range and QEMU forwards
169.254.169.254:80 to it (see link_local_netdev).
"""
import contextlib
import http.server
import io
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import paramiko

from imagebuilder import init_script

USER_NET_HOST = "10.0.2.2"   # the host's loopback as seen from a QEMU user-mode guest
USER_NET_GUEST = "10.0.2.15"
# Disk boots: QEMU's user network moved onto the link-local range, because slirp forwards a guest
# address (guestfwd) only when it lies inside its own network. The guest still gets its address
# from QEMU's DHCP server, just this one instead of 10.0.2.15.
LINK_LOCAL_NET = "169.254.0.0/16"
LINK_LOCAL_HOST = "169.254.0.2"
LINK_LOCAL_GUEST = "169.254.0.15"
# guestfwd's "cmd:" form starts this once per guest connection with the connection as stdin and
# stdout, so every HTTP request gets its own TCP connection to the MetadataServer. (The chardev
# form, guestfwd=...-tcp:127.0.0.1:PORT, connects once when QEMU starts and would carry every guest
# connection over that one stream.)
RELAY_CODE = """import os, socket, sys, threading
os.set_blocking(0, True)  # stdin = stdout, one socket; it may come non-blocking (eventlet's do)
server = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
def up():
    while data := os.read(0, 65536):
        server.sendall(data)
    server.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while data := server.recv(65536):
    os.write(1, data)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def public_key_line(key, comment="labcloud"):
    return f"{key.get_name()} {key.get_base64()} {comment}"


def generate_ed25519_key(path=None):
    """A fresh paramiko Ed25519Key (paramiko cannot generate one itself, nor write one back out);
    with `path`, also saved there in OpenSSH format (mode 600) for the system's ssh client."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    if path is not None:
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
            fh.write(pem)
    return paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode()))


class MetadataServer:
    """EC2-style paths the image's /init reads, for one guest, on 127.0.0.1:<port>."""

    def __init__(self, hostname, public_key, user_data=None, port=0):
        self.documents = {
            "/latest/meta-data/hostname": hostname,
            "/latest/meta-data/public-keys/0/openssh-key": public_key + "\n",
        }
        if user_data is not None:
            self.documents["/latest/user-data"] = user_data
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.documents.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def guest_url(self):
        return f"http://{USER_NET_HOST}:{self.port}/latest"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def link_local_netdev(metadata_port):
    """-netdev user options that give the guest the link-local network and make
    http://169.254.169.254/ reach 127.0.0.1:<metadata_port> on the host."""
    relay = shlex.join([sys.executable, "-S", "-c", RELAY_CODE, str(metadata_port)])
    forward = f"tcp:{init_script.METADATA_IP}:80-cmd:{relay}"
    return (f"net={LINK_LOCAL_NET},host={LINK_LOCAL_HOST},dhcpstart={LINK_LOCAL_GUEST},"
            f"guestfwd={forward.replace(',', ',,')}")  # a comma inside a QEMU option value is doubled


def qemu_command(image_dir, disk, ssh_port, metadata_url, console_log, hostname="tinyvm",
                 memory_mib=128, kernel="vmlinux", accel="tcg", extra_cmdline="", monitor_socket=None,
                 network="static", metadata_port=None):
    """network: "static" passes ip=... on the kernel command line; "dhcp" leaves it out so /init
    asks QEMU's built-in DHCP server (which hands out 10.0.2.15 as well).
    kernel=None: boot from the disk's own bootloader; there is no command line (metadata_url,
    hostname, extra_cmdline are unused), so the network is DHCP.
    metadata_port: put the guest on LINK_LOCAL_NET with 169.254.169.254:80 forwarded to this port."""
    if kernel is None:
        if network != "dhcp":
            raise ValueError("a disk boot has no kernel command line: its network can only be DHCP")
        boot = []
    else:
        ip = f"ip={USER_NET_GUEST}::{USER_NET_HOST}:255.255.255.0:{hostname}:eth0:off " if network == "static" else ""
        cmdline = f"console=ttyS0 {ip}labcloud.metadata={metadata_url} {extra_cmdline}".strip()
        boot = ["-kernel", os.path.join(image_dir, kernel), "-initrd", os.path.join(image_dir, "initrd.img"),
                "-append", cmdline]
    netdev = f"user,id=n0,hostfwd=tcp:127.0.0.1:{ssh_port}-:22"
    if metadata_port is not None:
        netdev += "," + link_local_netdev(metadata_port)
    return [
        "qemu-system-x86_64", "-accel", accel, "-m", str(memory_mib), "-smp", "1",
        "-nographic", "-nodefaults", "-no-user-config",
        *boot,
        "-drive", f"file={disk},format=qcow2,if=virtio",
        "-netdev", netdev,
        "-device", "virtio-net-pci,netdev=n0",
        # Entropy for the guest: without it dropbearkey blocks ~1 s until the kernel's CRNG is ready.
        "-device", "virtio-rng-pci",
        "-serial", f"file:{console_log}",
        "-monitor", f"unix:{monitor_socket},server=on,wait=off" if monitor_socket else "none",
    ]


BANNER_POLL_S = 0.25


def wait_for_banner(port, deadline, host="127.0.0.1"):
    """Poll until an SSH server answers with its banner. QEMU's forward accepts TCP at once and
    closes it while nothing listens in the guest; polling with a raw socket keeps paramiko from
    logging a traceback for each early attempt."""
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=2) as sock:
            # Short: slirp's connection into a guest that has no address yet waits out TCP's SYN
            # retransmit (1 s, 3 s); a fresh attempt every BANNER_POLL_S finds a booted guest sooner,
            # so the bare baseline is not made slower by this harness.
            sock.settimeout(max(0.05, min(BANNER_POLL_S, deadline - time.monotonic())))
            if sock.recv(4).startswith(b"SSH-"):
                return True
        time.sleep(0.05)
    return False


def wait_for_ssh(port, key, deadline, user="root", host="127.0.0.1"):
    """A connected, authenticated paramiko SSHClient, retrying until `deadline` (time.monotonic())."""
    last = None
    while time.monotonic() < deadline:
        if not wait_for_banner(port, deadline, host):
            break
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect(host, port=port, username=user, pkey=key, timeout=5, banner_timeout=5,
                           auth_timeout=10, look_for_keys=False, allow_agent=False)
            return client
        except (paramiko.SSHException, OSError, EOFError) as exc:
            last = exc
            client.close()
            time.sleep(0.2)
    raise TimeoutError(f"no SSH login on {host}:{port}: {last!r}")


class BareGuest:
    """One QEMU process booting `image_dir` with a throwaway copy-on-write disk over image_dir/`disk`
    (root.qcow2, or disk.qcow2 with kernel=None); always killed on exit."""

    def __init__(self, image_dir, metadata_url, hostname="tinyvm", memory_mib=128, kernel="vmlinux",
                 workdir=None, extra_cmdline="", network="static", disk="root.qcow2", metadata_port=None):
        self.image_dir, self.metadata_url, self.hostname = image_dir, metadata_url, hostname
        self.network, self.source_disk, self.metadata_port = network, disk, metadata_port
        self.memory_mib, self.kernel, self.extra_cmdline = memory_mib, kernel, extra_cmdline
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="labcloud-bareboot-")
        self.console_log = os.path.join(self.workdir, "console.log")
        self.disk = os.path.join(self.workdir, "disk.qcow2")
        self.monitor_socket = os.path.join(self.workdir, "monitor.sock")
        self.ssh_port = free_port()
        self.proc = None

    def start(self):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                        os.path.abspath(os.path.join(self.image_dir, self.source_disk)), self.disk],
                       check=True, capture_output=True)
        cmd = qemu_command(self.image_dir, self.disk, self.ssh_port, self.metadata_url, self.console_log,
                           self.hostname, self.memory_mib, self.kernel, extra_cmdline=self.extra_cmdline,
                           monitor_socket=self.monitor_socket, network=self.network,
                           metadata_port=self.metadata_port)
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.workdir, "qemu.err"), "wb"))
        return self

    def console(self):
        with contextlib.suppress(OSError), open(self.console_log, errors="replace") as f:
            return f.read()
        return ""

    def powerdown(self, timeout=30):
        """ACPI power button (what libvirt's shutdown sends); returns seconds until QEMU exited."""
        started = time.monotonic()
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(self.monitor_socket)
            sock.sendall(b"system_powerdown\n")
            self.proc.wait(timeout=timeout)
        return time.monotonic() - started

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def boot_and_ssh(image_dir, key, hostname="tinyvm", user_data=None, memory_mib=128, timeout=120,
                 kernel="vmlinux", on_ssh=None, keep_console=None, extra_cmdline="", network="static",
                 disk="root.qcow2"):
    """Boot the image with bare QEMU (TCG, user-mode net), log in as root with `key` (a paramiko
    PKey), return seconds from starting QEMU to a logged-in SSH session.

    on_ssh(client, guest): optional check run while the guest is up (e.g. commands over SSH).
    keep_console: a path to copy the serial console log to (useful when a boot fails).
    kernel: "vmlinux" (PVH, fast) or "bzImage"; extra_cmdline: appended to the kernel command line;
    network: "static" (ip= on the command line) or "dhcp".
    kernel=None, disk="disk.qcow2", network="dhcp": boot the self-booting disk image instead; the
    guest finds the metadata server at its default URL (LINK_LOCAL_NET, see link_local_netdev).
    QEMU is killed on return or on any error.
    """
    with MetadataServer(hostname, public_key_line(key), user_data) as metadata, \
            BareGuest(image_dir, metadata.guest_url, hostname, memory_mib, kernel,
                      extra_cmdline=extra_cmdline, network=network, disk=disk,
                      metadata_port=metadata.port if kernel is None else None) as guest:
        try:
            client = wait_for_ssh(guest.ssh_port, key, guest.started_at + timeout)
            seconds = time.monotonic() - guest.started_at
            try:
                if on_ssh:
                    on_ssh(client, guest)
            finally:
                client.close()
            return seconds
        except BaseException:
            if guest.proc.poll() is not None:
                raise RuntimeError(f"QEMU exited ({guest.proc.returncode}); console:\n{guest.console()[-3000:]}")
            raise
        finally:
            if keep_console and os.path.exists(guest.console_log):
                shutil.copy(guest.console_log, keep_console)


def run(client, command, timeout=20):
    """stdout of a command over SSH; raises on a non-zero exit."""
    _, stdout, stderr = client.exec_command(command, timeout=timeout)
    out = stdout.read().decode()
    status = stdout.channel.recv_exit_status()
    if status != 0:
        raise RuntimeError(f"{command!r} exited {status}: {stderr.read().decode()}")
    return out

