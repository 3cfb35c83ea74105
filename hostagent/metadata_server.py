"""The guest metadata service: EC2-style HTTP on 169.254.169.254:80 inside the host's namespace.

Guests (cloud-init, or the tiny image's /init) fetch their hostname, address, SSH keys and
user-data here. A guest is known only by the TCP source address of its request on the host's
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

log = logging.getLogger(__name__)

METADATA_ADDRESS = "169.254.169.254"
METADATA_PORT = 80
CACHE_SECONDS = 5.0
RPC_TIMEOUT_S = 5.0
BIND_RETRY_S = 2.0
TEXT = [("Content-Type", "text/plain; charset=utf-8")]

META_DATA_LISTING = ["instance-id", "hostname", "local-ipv4", "mac", "public-keys/",
                     "instance-type", "placement/"]


class LookupUnavailable(Exception):
    """The instances service could not be asked (down, timed out)."""


class Response:
    def __init__(self, status, body=b""):
        self.status, self.body = status, body if isinstance(body, bytes) else body.encode()


NOT_FOUND = Response("404 Not Found", "Not Found\n")


def _lines(items):
    return Response("200 OK", "\n".join(items))


def _value(value):
    return NOT_FOUND if value in (None, "") else Response("200 OK", str(value))


def _key_name(index):
    return "key" if index == 0 else f"key{index}"


def answer(path, data):
    """The response to GET `path` for a guest whose metadata is `data` (a dict; see module doc)."""
    meta = "/latest/meta-data/"
    if path in ("/latest", "/latest/"):
        return _lines(["meta-data/"] + (["user-data"] if data.get("user_data") is not None else []))
    if path == "/latest/user-data":
        user_data = data.get("user_data")
        return NOT_FOUND if user_data is None else Response("200 OK", user_data)
    if path in ("/latest/meta-data", meta):
        return _lines(META_DATA_LISTING)
    if not path.startswith(meta):
        return NOT_FOUND
    name = path[len(meta):]
    simple = {"instance-id": data.get("instance_id"), "hostname": data.get("hostname"),
              "local-ipv4": data.get("local_ipv4"), "mac": data.get("mac"),
              "instance-type": data.get("instance_type"),
              "placement/availability-zone": data.get("availability_zone")}
    if name in simple:
        return _value(simple[name])
    if name in ("placement", "placement/"):
        return _lines(["availability-zone"])
    keys = data.get("public_keys") or []
    if name in ("public-keys", "public-keys/"):
        return _lines([f"{i}={_key_name(i)}" for i in range(len(keys))]) if keys else NOT_FOUND
    parts = name.rstrip("/").split("/")
    if len(parts) in (2, 3) and parts[0] == "public-keys" and parts[1].isdigit():
        index = int(parts[1])
        if index >= len(keys):
            return NOT_FOUND
        if len(parts) == 2:
            return _lines(["openssh-key"])
        if parts[2] == "openssh-key":
            return Response("200 OK", keys[index].strip() + "\n")
    return NOT_FOUND


def make_app(lookup):
    """The WSGI app. `lookup(ip)` returns the metadata dict of the guest at `ip`, None for an
    address that is no guest, or raises LookupUnavailable."""
    def app(environ, start_response):
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            response = Response("405 Method Not Allowed", "Method Not Allowed\n")
        else:
            try:
                data = lookup(environ.get("REMOTE_ADDR", ""))
            except LookupUnavailable as exc:
                log.warning("metadata for %s unavailable: %s", environ.get("REMOTE_ADDR"), exc)
                data, response = None, Response("503 Service Unavailable", "Service Unavailable\n")
            else:
                response = NOT_FOUND if data is None else answer(environ.get("PATH_INFO") or "/", data)
        start_response(response.status, TEXT + [("Content-Length", str(len(response.body)))])
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

    from labcloud.netns import socket_in_netns
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
