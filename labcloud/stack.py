"""A whole labcloud stack as local processes: a private RabbitMQ node (unless AMQP_URI is given),
migrated databases, the bootstrap admin, every service, one host agent per configured host and the
gateway. Used by `labcloud run`, the end-to-end tests and the benchmarks."""
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from labcloud import metrics_ports, processes, rrdcached
from labcloud.rabbit import RabbitNode, die_with_parent, new_node_name

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Services with their own database: all of them (metrics keeps its samples in rrdtool files and
# its mail outbox and notification preferences in tables).
DATABASE_SERVICES = ("accounts", "network", "storage", "instances", "metrics")
SERVICES = DATABASE_SERVICES
# The local SMTP sink's Maildir, under the data dir (labcloud/mail_sink.py).
MAIL_DIR = "mail"
# Set in the environment of every service, host agent and gateway a stack starts (and inherited by
# what they start), so the next start on the same data dir finds those a killed launcher left.
STACK_MARKER = "LABCLOUD_STACK_DATA_DIR"
# stop(): services get SIGTERM, then SIGKILL after this; RabbitMQ gets as long again after them.
# Both fit, with the hosts' stop running alongside, in the 15 s a Ctrl-C may take.
SERVICE_GRACE_S = 5.0
RABBIT_GRACE_S = 5.0


def database_url(data_dir, service):
    return f"sqlite:///{os.path.join(data_dir, 'db', service + '.sqlite')}"


class Stack:
    def __init__(self, data_dir, port=8080, amqp_uri=None, hosts=1, hypervisor="test",
                 admin_password=None, extra_env=None, quiet=False, image_cache_dir=None,
                 replicas=None, metrics_http=True, prometheus=True):
        """hypervisor: "test" (libvirt's in-process test:///default driver in each host agent) or
        "qemu" (one private libvirtd per host in a network namespace, real guests).
        metrics_http: each host agent serves XenServer's /rrd_updates on a port of its own;
        prometheus: each service process and host agent serves its Prometheus metrics (both on
        free ports of 127.0.0.1, labcloud/metrics_ports.py)."""
        self.data_dir = os.path.abspath(data_dir)
        self.port = port
        self.amqp_uri = amqp_uri
        self.hosts = [f"host{i + 1}" for i in range(hosts)]
        if hypervisor not in ("test", "qemu"):
            raise ValueError(f"unknown hypervisor {hypervisor!r}: test or qemu")
        self.hypervisor = hypervisor
        self.image_cache_dir = image_cache_dir
        self.qemu_hosts = {}
        self.admin_password = admin_password
        self.extra_env = extra_env or {}
        # Processes per service ({"instances": 3}); replicas share the queues and the database,
        # as `docker compose up --scale` runs them.
        self.replicas = dict(replicas or {})
        self.quiet = quiet
        self.rabbit = None
        self.processes = {}
        self.admin_created_password = None
        self.lock_file = None
        self.stop_seconds = None
        self.stop_timings = {}  # seconds from the start of stop() until each part was down
        self.smtp_port = None  # the local mail sink's, when no relay is configured
        self.rrdcached_address = None  # the local rrdcached's, unless off or one is configured
        self.metrics_http = metrics_http
        self.prometheus = prometheus
        self.agent_metrics = {}  # host: metrics_ports.AgentMetricsHttp, when metrics_http
        self.prometheus_ports = {}  # process name: port, when prometheus
        self._ports_taken = {port}  # the ports above are all distinct, and not the gateway's

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def say(self, message):
        if not self.quiet:
            print(message, flush=True)

    # ----- start -----
    def start(self, timeout=90):
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()  # a half-started stack must not leave processes or namespaces behind
            raise

    def _start(self, timeout):
        for sub in ("db", "logs", "metrics", "pools", "images", "consoles"):
            os.makedirs(os.path.join(self.data_dir, sub), exist_ok=True)
        self._lock_data_dir()
        self.clean_up_previous_run()
        if self.amqp_uri is None:
            self.say("starting a private RabbitMQ node ...")
            self.rabbit = RabbitNode(os.path.join(self.data_dir, "rabbitmq"),
                                     name=self._rabbit_node_name()).start()
            self.amqp_uri = self.rabbit.amqp_uri
        self.migrate()
        self.bootstrap_admin()
        self.start_mail_sink()
        self.start_rrdcached()
        if self.hypervisor == "qemu":
            self.start_qemu_hosts()
        if self.metrics_http:
            self.agent_metrics = metrics_ports.agent_endpoints(self.data_dir, self.hosts, self._ports_taken)
        for service in SERVICES:
            for replica in range(max(1, int(self.replicas.get(service, 1)))):
                name = service if replica == 0 else f"{service}-{replica + 1}"
                self._spawn(name, [sys.executable, "-m", "nameko", "run", "--config",
                                   os.path.join(REPO_ROOT, "services", service, "config.yaml"),
                                   f"services.{service}.service"],
                            self._with_prometheus(name, self._service_env(service)))
        for host in self.hosts:
            name = f"hostagent-{host}"
            self._spawn(name, [sys.executable, "-m", "hostagent"],
                        self._with_prometheus(name, self._host_env(host)))
        self._spawn("gateway", [sys.executable, "-m", "gateway"], self._gateway_env())
        self.wait_ready(timeout)
        return self

    def _lock_data_dir(self):
        """One stack per data dir: held for the stack's life (the kernel drops it when the launcher
        dies, even by SIGKILL), so whatever of this data dir runs without the lock is stale."""
        self.lock_file = open(os.path.join(self.data_dir, "labcloud.lock"), "a+")
        try:
            fcntl.flock(self.lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.lock_file.close()
            self.lock_file = None
            raise RuntimeError(f"another labcloud run is using {self.data_dir}") from None

    def clean_up_previous_run(self):
        """What a launcher that did not finish its stop (kill -9, a crash) left of this data dir:
        its services, host agents and gateway, its RabbitMQ node, and each host's libvirtd, guests,
        dnsmasq and namespace. Guests are powered off; their definitions and disks stay."""
        marker = f"{STACK_MARKER}={self.data_dir}".encode()
        survivors = processes.terminate(processes.with_environment(marker))
        if survivors:
            raise RuntimeError(f"processes {survivors} of {self.data_dir} survived SIGKILL")
        RabbitNode(os.path.join(self.data_dir, "rabbitmq")).kill_stale()
        from labcloud.qemu_host import LocalQemuHost
        for host in LocalQemuHost.all_in(self.data_dir):
            host.clean_up()
        _remove_host_link(self.data_dir)  # the namespace linking the hosts, if one was left

    def _rabbit_node_name(self):
        """One node name per data directory, so its mnesia database is reused across runs."""
        path = os.path.join(self.data_dir, "rabbitmq", "node-name")
        if os.path.exists(path):
            return open(path).read().strip()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        name = new_node_name()
        with open(path, "w") as fh:
            fh.write(name)
        return name

    def start_qemu_hosts(self):
        """The default image is built the first time (cached packages make later runs quick), then
        each host gets its private libvirtd inside its own network namespace."""
        from imagebuilder.build import build
        from labcloud.qemu_host import LocalQemuHost
        self.say("building the tiny image (first run only) ...")
        build("tiny", self.data_dir, cache_dir=self.image_cache_dir,
              log=(lambda msg: None) if self.quiet else (lambda msg: print(msg, flush=True)))
        for index, host in enumerate(self.hosts):
            self.say(f"starting hypervisor host {host} (private libvirtd + QEMU) ...")
            # The index picks the host's bridge and migration addresses on the hosts' link.
            self.qemu_hosts[host] = LocalQemuHost(self.data_dir, host, index=index).start()

    def start_mail_sink(self, timeout=30):
        """Without a relay configured (SMTP_HOST), a local aiosmtpd sink keeps the mail in the
        Maildir `<data dir>/mail/`; the metrics service is pointed at the port it took."""
        if self._relay_configured():
            self.smtp_port = None
            return
        port_file = os.path.join(self.data_dir, "mail-sink.port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        self._spawn("mailsink", [sys.executable, "-m", "labcloud.mail_sink", "--maildir",
                                 os.path.join(self.data_dir, MAIL_DIR), "--port-file", port_file],
                    self._base_env())
        deadline = time.monotonic() + timeout
        while not os.path.exists(port_file):
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the mail sink did not start in {timeout}s")
            time.sleep(0.05)
        with open(port_file) as f:
            self.smtp_port = int(f.read())

    def start_rrdcached(self):
        """The metrics service writes its samples through a local rrdcached (labcloud/rrdcached.py)
        unless RRDCACHED_ADDRESS names another one, or LABCLOUD_RRDCACHED=off (each sample then
        an `rrdtool update` of its file)."""
        configured = {**os.environ, **self.extra_env}
        if configured.get("RRDCACHED_ADDRESS") or configured.get("LABCLOUD_RRDCACHED", "on") == "off":
            return
        run_dir = os.path.join(self.data_dir, "rrdcached")
        os.makedirs(run_dir, exist_ok=True)
        rrdcached.remove_stale_socket(run_dir)  # a killed launcher's daemon was ended above
        self._spawn("rrdcached", rrdcached.command(run_dir, os.path.join(self.data_dir, "metrics")),
                    self._base_env())
        rrdcached.wait_for_socket(run_dir, self.processes["rrdcached"])
        self.rrdcached_address = rrdcached.address_of(run_dir)

    def _relay_configured(self):
        return bool(self.extra_env.get("SMTP_HOST") or os.environ.get("SMTP_HOST"))

    def migrate(self):
        from common.migrate import upgrade
        for service in DATABASE_SERVICES:
            upgrade(f"services.{service}", database_url(self.data_dir, service))

    def bootstrap_admin(self):
        from common.db import make_engine
        from services.accounts.bootstrap import ensure_admin
        engine = make_engine(database_url(self.data_dir, "accounts"))
        try:
            created, password = ensure_admin(engine, self.admin_password)
        finally:
            engine.dispose()
        self.admin_created_password = password if created else None
        return created, password

    def _base_env(self):
        env = dict(os.environ)
        env.update(AMQP_URI=self.amqp_uri, LABCLOUD_DATA_DIR=self.data_dir,
                   **{STACK_MARKER: self.data_dir},
                   PYTHONPATH=REPO_ROOT + os.pathsep + env.get("PYTHONPATH", ""),
                   PYTHONWARNINGS="ignore::DeprecationWarning", PYTHONUNBUFFERED="1")
        env.update(self.extra_env)
        return env

    def _service_env(self, service):
        env = self._base_env()
        env.setdefault("PUBLIC_URL", self.url)  # one-time password links point at this gateway
        if service in DATABASE_SERVICES:
            env["DATABASE_URL"] = database_url(self.data_dir, service)
        env["METRICS_DIR"] = os.path.join(self.data_dir, "metrics")
        if service == "metrics" and self.rrdcached_address:
            env["RRDCACHED_ADDRESS"] = self.rrdcached_address
        if service == "metrics" and self.smtp_port:
            env.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(self.smtp_port), SMTP_STARTTLS="false")
            env.pop("SMTP_USER", None)
            env.pop("SMTP_PASSWORD", None)
        env["IMAGES_DIR"] = os.path.join(self.data_dir, "images")
        return env

    def _host_env(self, host):
        env = self._base_env()
        env.update(HOST_NAME=host, POOL_PATH=os.path.join(self.data_dir, "pools", host),
                   CONSOLE_DIR=os.path.join(self.data_dir, "consoles", host))
        if host in self.agent_metrics:
            env.update(self.agent_metrics[host].env(self.data_dir))
        qemu_host = self.qemu_hosts.get(host)
        if qemu_host is None:
            env.update(LIBVIRT_URI="test:///default")
        else:
            env.update(LIBVIRT_URI=qemu_host.uri, HOST_NETNS=qemu_host.netns,
                       HOST_NETWORK=qemu_host.network_name, DOMAIN_TYPE="qemu",
                       # Live migration: where other hosts' QEMUs reach this one's (the host's
                       # address on the link's migration network), and the URI another agent on
                       # this machine opens to reach this host's daemon.
                       MIGRATION_ADDRESS=qemu_host.migration_address, MIGRATION_URI=qemu_host.uri)
        return env

    def _with_prometheus(self, name, env):
        if self.prometheus:
            self.prometheus_ports[name] = metrics_ports.new_port(self._ports_taken)
            env.update(metrics_ports.prometheus_env(self.prometheus_ports[name]))
        return env

    def _gateway_env(self):
        env = self._base_env()
        env["LABCLOUD_PORT"] = str(self.port)
        return env

    def _spawn(self, name, argv, env):
        log = open(os.path.join(self.data_dir, "logs", f"{name}.log"), "ab")
        self.processes[name] = subprocess.Popen(argv, env=env, cwd=self.data_dir, stdout=log,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                start_new_session=True, preexec_fn=die_with_parent)

    def wait_ready(self, timeout):
        """Ready = the gateway answers, every service consumes its RPC queue and every host has sent
        a heartbeat the scheduler knows."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as resp:
                    if resp.status == 200 and self._services_up() and self._hosts_known():
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"labcloud did not become ready in {timeout}s; logs in {self.data_dir}/logs")

    def _services_up(self):
        """Each service answers over RPC (on a loaded machine one may start seconds after another).
        A method no service has: MethodNotFound comes from a running service, UnknownService while
        its queue does not exist yet."""
        from nameko.exceptions import MethodNotFound, UnknownService
        from nameko.standalone.rpc import ClusterRpcProxy
        with ClusterRpcProxy({"AMQP_URI": self.amqp_uri}, timeout=5) as rpc:
            for service in SERVICES:
                try:
                    rpc[service].labcloud_readiness_probe()
                except MethodNotFound:
                    continue
                except UnknownService:
                    return False
        return True

    def _hosts_known(self):
        """Asks the scheduler (the instances service owns the hosts table) over RPC."""
        from nameko.exceptions import UnknownService
        from nameko.standalone.rpc import ClusterRpcProxy
        try:
            with ClusterRpcProxy({"AMQP_URI": self.amqp_uri}, timeout=5) as rpc:
                known = {host["name"] for host in rpc.instances.list_hosts()}
        except UnknownService:  # the instances service has not consumed its queue yet
            return False
        return set(self.hosts) <= known

    def check_alive(self):
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                log = os.path.join(self.data_dir, "logs", f"{name}.log")
                tail = open(log, errors="replace").read()[-3000:] if os.path.exists(log) else ""
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    # ----- stop -----
    def stop(self):
        """Everything down, in parallel: each host powers its guests off and stops its daemon
        while the services stop, then RabbitMQ. Idempotent; the data dir keeps everything."""
        if not (self.processes or self.qemu_hosts or self.rabbit or self.lock_file):
            return  # stopped already (Stack.start's clean-up, then the caller's)
        started = time.monotonic()
        self.stop_timings = {}
        errors = []
        hosts = [threading.Thread(target=_collect_errors, args=(host.stop, errors),
                                  name=f"stop-{name}") for name, host in self.qemu_hosts.items()]
        for thread in hosts:
            thread.start()
        self._stop_processes()
        self.stop_timings["services_s"] = time.monotonic() - started
        if self.rabbit is not None:
            self.rabbit.stop(RABBIT_GRACE_S)
            self.rabbit = None
        self.stop_timings["rabbitmq_s"] = time.monotonic() - started
        for thread in hosts:
            thread.join()
        if self.qemu_hosts:
            # The last host's stop deletes it already; this also covers a host whose stop failed.
            _collect_errors(lambda: _remove_host_link(self.data_dir), errors)
        self.stop_timings["hosts_s"] = time.monotonic() - started
        self.qemu_hosts.clear()
        if self.lock_file is not None:
            self.lock_file.close()  # only now: until here, this stack's processes were running
            self.lock_file = None
        self.stop_seconds = time.monotonic() - started
        if errors:
            raise errors[0]  # after the rest was stopped; the next start cleans up what is left

    def _stop_processes(self):
        """SIGTERM to each process's session (it was started in its own), SIGKILL to those still
        there after SERVICE_GRACE_S."""
        started = time.monotonic()
        for proc in self.processes.values():
            _signal_session(proc, signal.SIGTERM)
        deadline = started + SERVICE_GRACE_S
        for name, proc in self.processes.items():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_session(proc, signal.SIGKILL)
                proc.wait(5)
                self.stop_timings.setdefault("killed", []).append(name)
        self.processes.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _signal_session(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _remove_host_link(data_dir):
    # Imported here, like LocalQemuHost: a stack with the test hypervisor needs no libvirt bindings.
    from labcloud.qemu_host import remove_link
    remove_link(data_dir)


def _collect_errors(function, errors):
    try:
        function()
    except Exception as exc:  # handed to the caller's thread
        errors.append(exc)
