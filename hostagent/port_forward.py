"""SSH endpoints: a port on 127.0.0.1 of the agent's machine forwarded to `<guest ip>:22`.

Guests live on a bridge inside the host's network namespace (HOST_NETNS), unreachable from the
machine's own namespace. The agent (in the machine's namespace) listens on 127.0.0.1:<port> and, per
accepted connection, opens the upstream socket inside the namespace (common.netns) and pumps
bytes both ways with two greenthreads. Nothing is routed or NATed, so no traffic leaves loopback and
the namespace.
"""
import errno
import logging
import time
import socket

import eventlet
from eventlet.green import select, socket as green_socket
from nameko.extensions import DependencyProvider

from hostagent import domains
from hostagent.hypervisor import HostConnection

log = logging.getLogger(__name__)

DEFAULT_PORT_RANGE = "22000-22999"
GUEST_SSH_PORT = 22
LISTEN_HOST = "127.0.0.1"
# One upstream attempt is short; the forward keeps trying for UPSTREAM_PATIENCE_S while it holds
# the client (see Forward._connect_patiently).
CONNECT_TIMEOUT_S = 0.1
UPSTREAM_RETRY_S = 0.02
UPSTREAM_PATIENCE_S = 15.0
CHUNK = 65536


def parse_port_range(text):
    low, _, high = str(text or DEFAULT_PORT_RANGE).partition("-")
    low, high = int(low), int(high or low)
    if not 1 <= low <= high <= 65535:
        raise ValueError(f"bad port range {text!r}")
    return low, high


class Forward:
    """One listening port and the sessions it carries to one guest."""

    def __init__(self, listener, target, connect, patience=UPSTREAM_PATIENCE_S):
        self.listener = listener
        self.patience = patience
        self.port = listener.getsockname()[1]
        self.target = target  # (ip, port) inside the namespace
        self._connect = connect
        self._sessions = set()  # (client, upstream) socket pairs being pumped
        self._acceptor = eventlet.spawn(self._accept_loop)

    def _accept_loop(self):
        while True:
            try:
                client, _addr = self.listener.accept()
            except OSError as exc:
                if exc.errno in (errno.EBADF, errno.EINVAL):
                    return  # listener closed by stop()
                log.warning("forward :%s accept failed: %s", self.port, exc)
                eventlet.sleep(0.1)
                continue
            eventlet.spawn_n(self._serve, client)

    def _serve(self, client):
        upstream = self._connect_patiently(client)
        if upstream is None:
            client.close()  # the guest never answered (or the client left): close our end
            return
        for sock in (client, upstream):
            sock.settimeout(None)
            # A relay passes small writes on at once (no Nagle): SSH's handshake is a series
            # of small messages.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        session = (client, upstream)
        self._sessions.add(session)
        try:
            back = eventlet.spawn(_pump, upstream, client)
            sent = _pump(client, upstream)
            received = back.wait()
            log.info("forward :%s -> %s:%s: session ended (client: %s; guest: %s)", self.port, *self.target,
                     sent, received)
        finally:
            self._sessions.discard(session)
            client.close()
            upstream.close()

    def _connect_patiently(self, client):
        """Hold the client while the guest boots and try the guest every UPSTREAM_RETRY_S: a
        client connecting early is joined to SSH as soon as it listens, instead of failing, or
        waiting out a TCP SYN retransmit (1 s, then 3 s) sent while the guest had no address yet.
        A client that gives up (closes) is let go at once: clients that poll with short timeouts
        would otherwise leave a pile of retry loops that all land on the guest when it is up."""
        deadline = time.monotonic() + self.patience
        while not _closed_by_peer(client):
            try:
                return self._connect(self.target, CONNECT_TIMEOUT_S)
            except OSError as exc:
                if time.monotonic() >= deadline:
                    log.info("forward :%s -> %s:%s: %s", self.port, *self.target, exc)
                    return None
            eventlet.sleep(UPSTREAM_RETRY_S)
        return None

    def stop(self, keep_sessions=False):
        self._acceptor.kill()
        self.listener.close()
        if keep_sessions:
            return  # the guest migrated: it still answers them, and they end when either side closes
        # Established sessions end too (the guest behind them is gone): shutting the sockets
        # down wakes both pumps of each session with EOF, and they close the sockets.
        for session in list(self._sessions):
            for sock in session:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def _closed_by_peer(sock):
    """True when the peer has closed (EOF is waiting), without consuming what it may have sent
    (an SSH client sends its version line before it hears the server's)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _pump(source, sink):
    """Copy until source's EOF, then pass the EOF on (half-close) so the other side finishes too.
    Returns how it ended ("eof", or the error), for the log."""
    ended = "eof"
    try:
        while True:
            data = source.recv(CHUNK)
            if not data:
                break
            sink.sendall(data)
    except OSError as exc:
        ended = repr(exc)
    try:
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    return ended


class PortForwarder:
    """Forwards per instance. `connect((ip, port), timeout)` opens an upstream socket (inside the
    host's namespace in production)."""

    def __init__(self, connect, port_range=DEFAULT_PORT_RANGE, listen_host=LISTEN_HOST,
                 patience=UPSTREAM_PATIENCE_S):
        self._connect = connect
        self.patience = patience
        self.low, self.high = parse_port_range(port_range)
        self.listen_host = listen_host
        self._forwards = {}  # instance_id -> Forward

    def ensure(self, instance_id, ip, port=None, guest_port=GUEST_SSH_PORT):
        """The instance's forward to ip:guest_port, made if missing, on `port` if given (a port
        recorded earlier) else on a free port of the range; returns the port."""
        existing = self._forwards.get(instance_id)
        if existing is not None:
            if existing.target == (ip, guest_port) and (port is None or existing.port == port):
                return existing.port
            self.stop(instance_id)
        listener = self._listen(port) if port is not None else self._listen_on_free_port()
        self._forwards[instance_id] = Forward(listener, (ip, guest_port), self._connect, self.patience)
        return self._forwards[instance_id].port

    def port_of(self, instance_id):
        forward = self._forwards.get(instance_id)
        return None if forward is None else forward.port

    def target_ip_of(self, instance_id):
        forward = self._forwards.get(instance_id)
        return None if forward is None else forward.target[0]

    def forwards(self):
        """[{instance_id, port}] of every forward this host holds."""
        return [{"instance_id": instance_id, "port": forward.port}
                for instance_id, forward in sorted(self._forwards.items())]

    def stop(self, instance_id, keep_sessions=False):
        forward = self._forwards.pop(instance_id, None)
        if forward is None:
            return False
        forward.stop(keep_sessions)
        return True

    def stop_all(self):
        for instance_id in list(self._forwards):
            self.stop(instance_id)

    def _listen_on_free_port(self):
        taken = {f.port for f in self._forwards.values()}
        for port in range(self.low, self.high + 1):
            if port in taken:
                continue
            try:
                return self._listen(port)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:  # someone else's port: try the next one
                    raise
        raise OSError(errno.EADDRINUSE, f"no free port in {self.low}-{self.high}")

    def _listen(self, port):
        sock = green_socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # Rebinding a port our previous run used must not wait for its TIME_WAIT sessions.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.listen_host, port))
            sock.listen(64)
        except OSError:
            sock.close()
            raise
        return sock


def connect_in_namespace(netns):
    """A connect function opening the upstream socket inside `netns`."""
    from common.netns import connect_in_netns  # Linux-only; not needed without a namespace

    def connect(address, timeout):
        return connect_in_netns(netns, address, timeout)
    return connect


class SshForwarding(DependencyProvider):
    """Injects the host's PortForwarder, or None when HOST_NETNS is empty (test:///default: no
    guest network to reach). On start it forwards again the ports recorded in the metadata of
    labcloud's domains, so SSH endpoints survive an agent restart."""

    host = HostConnection()

    def setup(self):
        self.netns = self.container.config.get("HOST_NETNS") or ""
        self.forwarder = None
        if self.netns:
            self.forwarder = PortForwarder(connect_in_namespace(self.netns),
                                           self.container.config.get("SSH_PORT_RANGE") or DEFAULT_PORT_RANGE)

    def start(self):
        if self.forwarder is None:
            return
        try:
            restore(self.forwarder, self.host.connection)
        except Exception as exc:  # noqa: BLE001  (libvirt down: forwards come back with create/start)
            log.warning("could not restore SSH forwards: %s", exc)

    def stop(self):
        if self.forwarder is not None:
            self.forwarder.stop_all()

    kill = stop

    def get_dependency(self, worker_ctx):
        return self.forwarder


def restore(forwarder, connection):
    """Forward every running labcloud domain with an IP again, on the port its metadata records
    (a new one, recorded, if that port is taken or none was recorded)."""
    for instance_id, metadata, active in connection.run(domains.forward_targets):
        ip = metadata.get("ip")
        if not ip or not active:
            continue  # a stopped domain gets its forward back from start_domain
        recorded = int(metadata["ssh_port"]) if metadata.get("ssh_port") else None
        try:
            port = forwarder.ensure(instance_id, ip, recorded)
        except OSError:
            port = forwarder.ensure(instance_id, ip)
        if port != recorded:
            connection.run(domains.record_ssh_port, instance_id, port)
        log.info("SSH forward 127.0.0.1:%s -> %s:22 restored for %s", port, ip, instance_id)
