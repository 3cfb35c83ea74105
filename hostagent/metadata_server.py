"""The guest metadata service: EC2-style HTTP on 169.254.169.254:80 inside the host's namespace.

Guests (cloud-init, or the tiny image's /init) fetch their hostname, address, SSH keys and
user-data here (the paths: metadata_tree.py; IMDSv2 session tokens: imds_tokens.py). A guest is known only by the TCP source address of its request on the host's
bridge (nothing it sends is trusted), so it can read its own data and nobody else's. The data
comes from the instances service (`instances.get_guest_metadata(host, ip)`), cached for a few
seconds because a booting guest asks for a dozen paths in a row.
"""
import logging
import time

import eventlet
import eventlet.wsgi
from eventlet import semaphore
from nameko.extensions import DependencyProvider

from common.errors import NotFound
from hostagent.imds_tokens import SessionTokens, TokenTtlInvalid, parse_ttl
from hostagent.metadata_tree import NOT_FOUND, Response, answer

log = logging.getLogger(__name__)

METADATA_ADDRESS = "169.254.169.254"
METADATA_PORT = 80
CACHE_SECONDS = 5.0
RPC_TIMEOUT_S = 5.0
BIND_RETRY_S = 2.0
TEXT = [("Content-Type", "text/plain; charset=utf-8")]
TOKEN_PATH = "/latest/api/token"
TOKEN_HEADER = "HTTP_X_AWS_EC2_METADATA_TOKEN"
TOKEN_TTL_HEADER = "HTTP_X_AWS_EC2_METADATA_TOKEN_TTL_SECONDS"


class LookupUnavailable(Exception):
    """The instances service could not be asked (down, timed out)."""


def _error(status):
    return Response(status, status.split(" ", 1)[1] + "\n")


def make_app(lookup, tokens=None):
    """The WSGI app. `lookup(ip)` returns the metadata dict of the guest at `ip`, None for an
    address that is no guest, or raises LookupUnavailable. `tokens`: IMDSv2 session tokens."""
    tokens = tokens or SessionTokens()

    def respond(environ):
        method, ip = environ.get("REQUEST_METHOD"), environ.get("REMOTE_ADDR", "")
        path = environ.get("PATH_INFO") or "/"
        if method == "PUT" and path == TOKEN_PATH:
            # As EC2: a request relayed by a proxy in the guest gets no token.
            if environ.get("HTTP_X_FORWARDED_FOR"):
                return _error("403 Forbidden")
            try:
                ttl = parse_ttl(environ.get(TOKEN_TTL_HEADER))
            except TokenTtlInvalid as exc:
                return Response("400 Bad Request", f"{exc}\n")
            return Response("200 OK", tokens.issue(ip, ttl),
                            [("X-aws-ec2-metadata-token-ttl-seconds", str(ttl))])
        if method not in ("GET", "HEAD"):
            return _error("405 Method Not Allowed")
        # IMDSv1 (no token) is allowed; a token that is sent must be valid for this address.
        if TOKEN_HEADER in environ and not tokens.valid(ip, environ[TOKEN_HEADER]):
            return _error("401 Unauthorized")
        try:
            data = lookup(ip)
        except LookupUnavailable as exc:
            log.warning("metadata for %s unavailable: %s", ip, exc)
            return _error("503 Service Unavailable")
        return NOT_FOUND if data is None else answer(path, data)

    def app(environ, start_response):
        response = respond(environ)
        start_response(response.status,
                       TEXT + response.headers + [("Content-Length", str(len(response.body)))])
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [response.body]
    return app


class CachedLookup:
    """`fetch(ip)` answers (including None: not a guest) remembered for `ttl` seconds; a failed
    fetch is not remembered."""

    def __init__(self, fetch, ttl=CACHE_SECONDS, clock=time.monotonic):
        self.fetch, self.ttl, self.clock = fetch, ttl, clock
        self._cache = {}

    def __call__(self, ip):
        hit = self._cache.get(ip)
        now = self.clock()
        if hit is not None and hit[0] > now:
            return hit[1]
        value = self.fetch(ip)
        self._cache[ip] = (now + self.ttl, value)
        return value

    def forget(self, ip):
        self._cache.pop(ip, None)


class InstancesMetadataClient:
    """`instances.get_guest_metadata(host, ip)` over a standalone RPC proxy, made once.

    The standalone proxy reads its replies on one connection in the calling greenthread, so calls
    are serialized (the cache keeps them rare)."""

    def __init__(self, config, host, timeout=RPC_TIMEOUT_S):
        self.config, self.host, self.timeout = config, host, timeout
        self._proxy_holder = None
        self._proxy = None
        self._lock = semaphore.Semaphore()

    def __call__(self, ip):
        from nameko.standalone.rpc import ClusterRpcProxy
        with self._lock:
            try:
                if self._proxy is None:
                    self._proxy_holder = ClusterRpcProxy(self.config, timeout=self.timeout)
                    self._proxy = self._proxy_holder.start()
                return self._proxy.instances.get_guest_metadata(self.host, ip)
            except NotFound:
                return None
            except Exception as exc:  # noqa: BLE001  (down, timed out, broken: start afresh next time)
                self._close()
                raise LookupUnavailable(str(exc)) from None

    def _close(self):
        holder, self._proxy_holder, self._proxy = self._proxy_holder, None, None
        if holder is not None:
            try:
                holder.stop()
            except Exception:  # noqa: BLE001
                pass

    def close(self):
        with self._lock:
            self._close()


def metadata_listener(netns, address=METADATA_ADDRESS, port=METADATA_PORT):
    """A listening socket bound inside `netns` (the agent itself stays in its own namespace)."""
    import socket

    from common.netns import socket_in_netns
    sock = socket_in_netns(netns, socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


class MetadataServer(DependencyProvider):
    """Serves the metadata app inside HOST_NETNS while the agent runs (nothing when it is empty).
    Config: METADATA_ADDRESS (169.254.169.254), METADATA_PORT (80), METADATA_CACHE_SECONDS (5)."""

    def setup(self):
        config = self.container.config
        self.netns = config.get("HOST_NETNS") or ""
        self.address = config.get("METADATA_ADDRESS") or METADATA_ADDRESS
        self.port = int(config.get("METADATA_PORT") or METADATA_PORT)
        host = getattr(self.container.service_cls, "host_name", None) or config.get("HOST_NAME")
        self.client = InstancesMetadataClient(config, host)
        self.lookup = CachedLookup(self.client, float(config.get("METADATA_CACHE_SECONDS", CACHE_SECONDS)))
        self.app = make_app(self.lookup)
        self.sock = None
        self._gt = None

    def start(self):
        if self.netns:
            self._gt = self.container.spawn_managed_thread(self._serve, "metadata-server")

    def _serve(self):
        # The address may not be on the bridge yet when the agent starts: keep trying.
        while self.sock is None:
            try:
                self.sock = metadata_listener(self.netns, self.address, self.port)
            except OSError as exc:
                log.warning("metadata server: cannot listen on %s:%s in %s: %s",
                            self.address, self.port, self.netns, exc)
                eventlet.sleep(BIND_RETRY_S)
        log.info("metadata server on %s:%s in netns %s", self.address, self.port, self.netns)
        eventlet.wsgi.server(self.sock, self.app, log=log, log_output=False, socket_timeout=30)

    def stop(self):
        if self._gt is not None:
            self._gt.kill()
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.client.close()

    kill = stop

    def forget(self, ip):
        """An address changed hands (domain created or destroyed): released IPs are reused at once,
        so a cached answer for the previous guest must never reach the next one."""
        self.lookup.forget(ip)

    def get_dependency(self, worker_ctx):
        return self
