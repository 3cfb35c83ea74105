"""A private RabbitMQ node: own data dir, own ports, nothing else on the machine touched.

Debian's /usr/sbin wrapper switches to the `rabbitmq` user, which cannot write into our data
directory, so the node is started through /usr/lib/rabbitmq/bin/rabbitmq-server with every
location pointed inside `base_dir`.
"""
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid

from labcloud import processes

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
PR_SET_PDEATHSIG = 1
EPMD_PORT = 4369


def die_with_parent():
    """In the child before exec: SIGTERM when whoever started it dies, even by SIGKILL, so a
    killed launcher or test run cannot leave a node (or a service) behind."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def ensure_epmd():
    """Start Erlang's port mapper ourselves, with a bare environment, when none runs. Otherwise the
    first node starts it with the node's environment, and epmd (a machine-wide daemon, rightly
    left running) would carry this node's data dir for ever."""
    if port_open(EPMD_PORT):
        return
    epmd = shutil.which("epmd") or "/usr/bin/epmd"
    subprocess.run([epmd, "-daemon"], env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, cwd="/",
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True, timeout=10)


def new_node_name():
    return f"labcloud-{uuid.uuid4().hex[:8]}"


class RabbitNode:
    def __init__(self, base_dir, amqp_port=None, dist_port=None, name=None):
        self.base_dir = os.path.abspath(base_dir)
        self.amqp_port = amqp_port or free_port()
        self.dist_port = dist_port or free_port()
        self.name = name or new_node_name()
        self.process = None

    @property
    def amqp_uri(self):
        return f"pyamqp://guest:guest@127.0.0.1:{self.amqp_port}//"

    def environment(self):
        home = os.path.join(self.base_dir, "home")
        for sub in ("home", "mnesia", "log"):
            os.makedirs(os.path.join(self.base_dir, sub), exist_ok=True)
        plugins_file = os.path.join(self.base_dir, "enabled_plugins")
        if not os.path.exists(plugins_file):
            with open(plugins_file, "w") as fh:
                fh.write("[].\n")
        env = dict(os.environ)
        env.update(
            HOME=home,
            RABBITMQ_NODENAME=f"{self.name}@localhost",
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=os.path.join(self.base_dir, "mnesia"),
            RABBITMQ_LOG_BASE=os.path.join(self.base_dir, "log"),
            RABBITMQ_FEATURE_FLAGS_FILE=os.path.join(self.base_dir, "feature_flags"),
            RABBITMQ_ENABLED_PLUGINS_FILE=plugins_file,
            RABBITMQ_PLUGINS_EXPAND_DIR=os.path.join(self.base_dir, "plugins-expand"),
            RABBITMQ_PID_FILE=os.path.join(self.base_dir, "rabbit.pid"),
            RABBITMQ_CONFIG_FILE=os.path.join(self.base_dir, "rabbitmq"),
        )
        return env

    def stale_pids(self):
        """Processes of a node on this base dir that nobody stops any more (its launcher was killed):
        the Erlang VM and its helpers carry RABBITMQ_MNESIA_BASE in their environment."""
        marker = f"RABBITMQ_MNESIA_BASE={os.path.join(self.base_dir, 'mnesia')}".encode()
        return [pid for pid in processes.with_environment(marker)
                if processes.command_name(pid) != "epmd"]  # shared by every node on the machine

    def kill_stale(self):
        """End a node a previous launcher left on this base dir: the new node has the same name
        and data, and would refuse to start next to it."""
        survivors = processes.terminate(self.stale_pids())
        if survivors:
            raise RuntimeError(f"RabbitMQ processes {survivors} of {self.base_dir} survived SIGKILL")

    def start(self, timeout=60):
        ensure_epmd()
        if port_open(self.amqp_port):
            raise RuntimeError(f"port {self.amqp_port} is already taken")
        log = open(os.path.join(self.base_dir, "server.out"), "ab") if os.path.isdir(self.base_dir) else None
        if log is None:
            os.makedirs(self.base_dir, exist_ok=True)
            log = open(os.path.join(self.base_dir, "server.out"), "ab")
        self.process = subprocess.Popen(
            [RABBITMQ_SERVER], env=self.environment(), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"RabbitMQ exited with {self.process.returncode}; see {self.base_dir}/server.out")
            if port_open(self.amqp_port) and self._amqp_ready():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"RabbitMQ did not open port {self.amqp_port} within {timeout}s")

    def _amqp_ready(self):
        from kombu import Connection
        try:
            with Connection(self.amqp_uri, connect_timeout=2) as conn:
                conn.connect()
            return True
        except Exception:
            return False

    def add_vhosts(self, names, user="guest"):
        """Create vhosts (full permissions for `user`) in one rabbitmqctl call: each call costs an
        Erlang VM start (~1 s), so tests create them in batches."""
        quoted = ", ".join(f'<<"{name}">>' for name in names)
        code = (f"lists:foreach(fun(V) -> rabbit_vhost:add(V, <<\"labcloud\">>), "
                f"rabbit_auth_backend_internal:set_permissions(<<\"{user}\">>, V, <<\".*\">>, "
                f"<<\".*\">>, <<\".*\">>, <<\"labcloud\">>) end, [{quoted}]).")
        result = subprocess.run(
            [os.path.join(os.path.dirname(RABBITMQ_SERVER), "rabbitmqctl"), "-n",
             f"{self.name}@localhost", "eval", code],
            env=self.environment(), capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl eval failed: {result.stderr or result.stdout}")

    def amqp_uri_for(self, vhost):
        return f"pyamqp://guest:guest@127.0.0.1:{self.amqp_port}/{vhost}"

    def stop(self, timeout=20):
        """SIGTERM to the node's whole process group (the VM and its port programs), SIGKILL after
        `timeout`: an unclean stop costs only a recovery at the next start."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        except ProcessLookupError:
            pass
