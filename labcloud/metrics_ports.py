"""The HTTP ports a local stack opens for metrics: each host agent's XenServer `rrd_updates` port
(hostagent/metrics_http.py, HTTP Basic) and each service process's and agent's Prometheus port
(common/prometheus.py). Ports are free ones on 127.0.0.1 below the kernel's ephemeral range,
picked at every start; the agents' credentials are generated once per data directory and kept there, so a script polling an agent
keeps working across restarts of `labcloud run`."""
import json
import os
import random
import secrets
import socket
import tempfile
from dataclasses import dataclass

from labcloud.rabbit import free_port

CREDENTIALS_FILE = "agent-metrics-credentials.json"  # under the data dir, mode 0600
AGENT_METRICS_DIR = "agent-metrics"  # each agent's own rrd files: <data dir>/agent-metrics/<host>
AGENT_METRICS_USER = "metrics"
ADDRESS = "127.0.0.1"
EPHEMERAL_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"
LOWEST_PORT = 20000


@dataclass(frozen=True)
class AgentMetricsHttp:
    """Where a host agent serves /rrd_updates and /vm_rrd, and the Basic credentials it takes."""
    host: str
    port: int
    user: str
    password: str

    @property
    def url(self):
        return f"http://{ADDRESS}:{self.port}"

    @property
    def auth(self):
        return self.user, self.password

    def env(self, data_dir):
        return {"METRICS_HTTP_PORT": str(self.port), "METRICS_HTTP_ADDRESS": ADDRESS,
                "METRICS_HTTP_USER": self.user, "METRICS_HTTP_PASSWORD": self.password,
                "METRICS_HTTP_DIR": os.path.join(data_dir, AGENT_METRICS_DIR, self.host)}


def agent_credentials(data_dir):
    """(user, password) of the agents' metrics ports: read from the data dir, or made the first
    time. Written whole (mode 0600) to a file of its own, then linked into place: a crash leaves no
    half-written file, and of two starts racing the first one's stay."""
    path = os.path.join(data_dir, CREDENTIALS_FILE)
    if not os.path.exists(path):
        fd, made = tempfile.mkstemp(dir=data_dir, prefix=".credentials-")  # mode 0600
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"user": AGENT_METRICS_USER, "password": secrets.token_urlsafe(18)}, f)
            os.link(made, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(made)
    with open(path) as f:
        kept = json.load(f)
    return kept["user"], kept["password"]


def _ephemeral_start():
    try:
        with open(EPHEMERAL_RANGE) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _candidate():
    """A port from LOWEST_PORT up to the kernel's ephemeral range: the kernel never hands those out
    itself (an outgoing connection's port, a bind to port 0), so none of the connections the other
    processes of this machine open can take it between this pick and the child's bind. (A port
    from free_port(), in that range, could be, and the child would fail to start.) Where that range
    leaves too little below it, a free port of the kernel's."""
    first = _ephemeral_start()
    if first - LOWEST_PORT < 1000:
        return free_port()
    return random.randrange(LOWEST_PORT, first)


def _bindable(port):
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listeners bind
        try:
            sock.bind((ADDRESS, port))
        except OSError:
            return False
    return True


def new_port(taken):
    """A free port of 127.0.0.1 not in `taken` (the ports this start handed out already), added to
    it."""
    while True:
        port = _candidate()
        if port not in taken and _bindable(port):
            taken.add(port)
            return port


def agent_endpoints(data_dir, hosts, taken):
    """{host: AgentMetricsHttp} with a free port each and the data dir's credentials."""
    user, password = agent_credentials(data_dir)
    return {host: AgentMetricsHttp(host, new_port(taken), user, password) for host in hosts}


def prometheus_env(port):
    return {"PROMETHEUS_PORT": str(port), "PROMETHEUS_ADDRESS": ADDRESS}
