"""A fixed-size pool of started nameko `ClusterRpcProxy` objects.

Starting a ClusterRpcProxy costs a broker round trip and declares a new reply queue (~15 ms), so a
request borrows an already started one instead. A standalone proxy is single-threaded: one
request uses it at a time, which is exactly what a checkout guarantees.
"""
import contextlib
import logging
import queue
import threading

from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu.exceptions import OperationalError
from nameko.exceptions import BadRequest, RemoteError, UnknownService
from nameko.standalone.rpc import ClusterRpcProxy

from common.errors import LabcloudError

log = logging.getLogger(__name__)

DEFAULT_POOL_SIZE = 8
DEFAULT_TIMEOUT = 30.0

# Raised by a service's reply: the round trip worked, so the proxy is still healthy.
_REPLY_ERRORS = (LabcloudError, RemoteError, BadRequest, UnknownService)
# The broker connection failed: the proxy is broken and the client should retry later.
_CONNECTION_ERRORS = (OSError, AmqpConnectionError, OperationalError)


class ServiceUnavailable(LabcloudError):
    """Gateway-local (never crosses RPC): the broker or a service cannot be reached."""
    http_status = 503
    code = "service_unavailable"


class _Member:
    """One started proxy: `wrapper` is stopped on discard, `cluster` is what callers use."""

    def __init__(self, config, timeout):
        self.wrapper = ClusterRpcProxy(config, timeout=timeout)
        self.cluster = self.wrapper.start()

    @property
    def connected(self):
        consumer = self.wrapper._reply_listener.queue_consumer
        return not consumer.stopped and consumer.connection.connected is not False

    def stop(self):
        try:
            self.wrapper.stop()
        except Exception:  # the connection is usually already dead; nothing left to do
            log.debug("error while stopping a discarded rpc proxy", exc_info=True)


class RpcPool:
    def __init__(self, config, size=None, timeout=None):
        """`config` is the nameko config (needs AMQP_URI); size/timeout default to its
        RPC_POOL_SIZE/RPC_TIMEOUT. Proxies are started lazily, so the gateway starts (and serves
        /healthz) while RabbitMQ is still coming up."""
        self.config = dict(config)
        self.size = int(size or self.config.get("RPC_POOL_SIZE") or DEFAULT_POOL_SIZE)
        self.timeout = float(timeout or self.config.get("RPC_TIMEOUT") or DEFAULT_TIMEOUT)
        self._idle = queue.LifoQueue()  # LIFO: reuse the warmest connection first
        self._slots = threading.BoundedSemaphore(self.size)  # green after monkey_patch
        self._closed = False

    def _take(self):
        """An idle, still-connected proxy, or a newly started one."""
        while True:
            try:
                member = self._idle.get_nowait()
            except queue.Empty:
                break
            if member.connected:
                return member
            member.stop()
        try:
            return _Member(self.config, self.timeout)
        except _CONNECTION_ERRORS as exc:
            log.warning("cannot start an rpc proxy: %s", exc)
            raise ServiceUnavailable("the message broker is not reachable") from exc

    @contextlib.contextmanager
    def checkout(self):
        """Yield a cluster proxy (`rpc.accounts.authenticate(...)`) for one request.

        Waits at most RPC_TIMEOUT for a free proxy. A proxy whose call failed for any reason other
        than a service's reply (connection error, RPC timeout, ...) is discarded: after a timeout
        its reply queue may still receive the late answer, after a connection error it is dead.
        """
        if self._closed:
            raise ServiceUnavailable("the gateway is shutting down")
        if not self._slots.acquire(timeout=self.timeout):
            raise ServiceUnavailable("all rpc connections are busy, try again")
        member = None
        try:
            member = self._take()
            yield member.cluster
        except _REPLY_ERRORS:
            raise
        except _CONNECTION_ERRORS as exc:
            member = self._discard(member)
            raise ServiceUnavailable("the message broker is not reachable") from exc
        except BaseException:  # RpcTimeout, RuntimeError("consumer disconnected"), GreenletExit...
            member = self._discard(member)
            raise
        finally:
            if member is not None:
                if self._closed:
                    member.stop()
                else:
                    self._idle.put(member)
            self._slots.release()

    @staticmethod
    def _discard(member):
        if member is not None:
            member.stop()
        return None

    def close(self):
        """Stop every idle proxy; proxies in use are stopped when they are checked back in."""
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().stop()
            except queue.Empty:
                return

