"""Test-session fixtures: one private RabbitMQ node for the whole session, a clean vhost-free
config per test (queues are named per service, and every test tears its containers down); each
service's database migrated once per session and copied per test; stacks stopped in the background;
the tiny image built once per session."""
import warnings

warnings.filterwarnings("ignore", message=".*Eventlet is deprecated", category=DeprecationWarning)
import os  # noqa: E402

import eventlet  # noqa: E402

# nameko >= 2.13's pytest plugin no longer does this; services need it. The browser tier runs without
# it (LABCLOUD_TESTS_GREEN=0, see the Makefile): Playwright's sync API runs its own asyncio loop in a
# thread and hangs under eventlet's patching, and that tier only drives processes over HTTP.
GREEN = os.environ.get("LABCLOUD_TESTS_GREEN", "1") != "0"
if GREEN:
    eventlet.monkey_patch()
import contextlib
import fcntl
import json
import shutil
import tempfile
import threading
import time

import pytest

from labcloud.rabbit import RabbitNode

# nameko's QueueConsumer (kombu's ConsumerMixin) waits in drain_events(timeout=safety_interval, 1 s
# by default) and sees that it should stop only when that wait ends: stopping a service container
# the tests started in this process took a second, of which the fast tier has over a hundred. The
# loop looks every 0.1 s here instead (messages arrive the moment they come either way; on a
# timeout it only checks the connection's heartbeat). Services run as processes are untouched.
if GREEN:
    import functools

    from kombu.mixins import ConsumerMixin
    from nameko.messaging import QueueConsumer

    QueueConsumer.run = functools.partialmethod(ConsumerMixin.run, safety_interval=0.1)

# Debian packages the image builder downloads: kept between test runs on this machine.
DEB_CACHE = os.path.join(tempfile.gettempdir(), "labcloud-debcache")


# Tiers by folder: `make test` runs the fast tier, then e2e, then browser, then realguest.
TIER_FOLDERS = {"e2e": "e2e", "browser": "browser", "realguest": "realguest"}


def pytest_collection_modifyitems(items):
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        relative = os.path.relpath(str(item.fspath), here)
        marker = TIER_FOLDERS.get(relative.split(os.sep, 1)[0])
        if marker:
            item.add_marker(getattr(pytest.mark, marker))


@pytest.fixture(scope="session")
def rabbit_node():
    base = tempfile.mkdtemp(prefix="labcloud-rabbit-")
    node = RabbitNode(base).start()
    try:
        yield node
    finally:
        try:
            finish_stops()  # the stacks on this node are down before it stops
        finally:
            node.stop()


class VhostPool:
    """A fresh vhost per test, so durable queues and unacked messages of one test never reach the
    next. vhosts are made in batches because each rabbitmqctl call starts an Erlang VM, and adding
    them takes the node a while (100: ~4 s, the next 100: ~7 s): the first few at once, the rest of
    what the session needs (vhosts_needed) in the background while the first tests run; should
    that fall short, more in small batches."""

    def __init__(self, node, needed=100, first=10, batch=20):
        self.node, self.needed, self.first, self.batch = node, needed, first, batch
        self.free, self.made, self.pending = [], 0, None

    def _names(self, count):
        names = [f"test-{self.made + i}" for i in range(count)]
        self.made += count
        return names

    def take(self):
        if not self.free:
            names = self._wait_for_pending()
            if names is None:
                names = self._names(self.first if self.made == 0 else self.batch)
                self.node.add_vhosts(names)
            self.free.extend(names)
            if self.made < self.needed:
                self._make_in_background(self._names(self.needed - self.made))
        return self.free.pop(0)

    def _make_in_background(self, names):
        errors = []

        def make():
            try:
                self.node.add_vhosts(names)
            except Exception as exc:  # raised by take() or close(), in the test's thread
                errors.append(exc)
        thread = threading.Thread(target=make, name="vhosts", daemon=True)
        thread.start()
        self.pending = (thread, names, errors)

    def _wait_for_pending(self):
        """The names of the batch being made in the background, once made (None if there is none)."""
        if self.pending is None:
            return None
        thread, names, errors = self.pending
        thread.join()
        self.pending = None
        if errors:
            raise errors[0]
        return names

    def close(self):
        """Waits for a batch still being made (its rabbitmqctl must not outlive the node)."""
        self._wait_for_pending()


def vhosts_needed(items):
    """How many vhosts the collected tests take: one per test that gets a rabbit_config (function
    scope), and up to two per module whose tests use vhosts otherwise (its stack fixtures: one of
    the module, one shared by its package), and a few more. Adding vhosts gets slower the more a
    node has, so the pool makes about this many and no more."""
    fixtures = [(item, getattr(item, "fixturenames", ())) for item in items]
    per_test = sum(1 for _item, names in fixtures if "rabbit_config" in names)
    modules = {item.nodeid.split("::")[0] for item, names in fixtures
               if "vhosts" in names and "rabbit_config" not in names}
    return max(5, min(300, per_test + 2 * len(modules) + 5))


@pytest.fixture(scope="session")
def vhosts(rabbit_node, request):
    pool = VhostPool(rabbit_node, needed=vhosts_needed(request.session.items))
    yield pool
    pool.close()


@pytest.fixture
def rabbit_config(rabbit_node, vhosts):
    # Overrides nameko's own fixture, which needs the management plugin.
    return {"AMQP_URI": rabbit_node.amqp_uri_for(vhosts.take())}


@pytest.fixture(scope="session")
def postgres():
    """One private PostgreSQL cluster per test session (the database compose deploys with)."""
    from labcloud.postgres import PostgresCluster
    cluster = PostgresCluster(tempfile.mkdtemp(prefix="labcloud-pg-")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def migrated_templates(tmp_path_factory):
    """service package -> an SQLite database migrated to head by common.migrate.upgrade, once per
    session (a migration run costs up to a few tenths of a second and some 300 tests want one)."""
    from common.migrate import upgrade
    base, made = str(tmp_path_factory.mktemp("migrated")), {}

    def template(service_package):
        if service_package not in made:
            path = os.path.join(base, service_package.rsplit(".", 1)[-1] + ".sqlite")
            upgrade(service_package, f"sqlite:///{path}")
            made[service_package] = path
        return made[service_package]
    return template


@pytest.fixture
def migrated_database(migrated_templates):
    """Returns a function (service package) -> migrated database URL in a fresh temp dir: a copy
    (SQLite's backup API) of the session's migrated database of that service."""
    import sqlite3

    def make(service_package):
        path = tempfile.mkdtemp(prefix="labcloud-db-")
        target = f"{path}/{service_package.rsplit('.', 1)[-1]}.sqlite"
        source = sqlite3.connect(migrated_templates(service_package))
        try:
            copy = sqlite3.connect(target)
            try:
                source.backup(copy)
            finally:
                copy.close()
        finally:
            source.close()
        return f"sqlite:///{target}"
    return make


@pytest.fixture
def service_config(rabbit_config):
    def make(**extra):
        config = dict(rabbit_config)
        config.update(extra)
        return config
    return make


# ----- stacks stopped while the next tests run -----
# A stack's stop waits seconds for its services to end (each takes 3-5 s after SIGTERM, idle); a
# module's stack fixture hands it here instead and the next module starts meanwhile. Every stop is
# waited for, and its error raised, before the session's RabbitMQ node stops (rabbit_node above).
_stopping = []


def stop_later(stack):
    """stack.stop() in a thread (a green one in the green tiers); finish_stops() waits for it."""
    errors = []

    def stop():
        try:
            stack.stop()
        except BaseException as exc:  # raised by finish_stops, in the test session's thread
            errors.append(exc)
    thread = threading.Thread(target=stop, name=f"stop-{os.path.basename(stack.data_dir)}", daemon=True)
    thread.start()
    time.sleep(0)  # a green thread runs now, up to its first wait: the SIGTERMs are sent
    _stopping.append((stack, thread, errors))


def finish_stops():
    """Waits for every stop_later() stop; raises the first error (after waiting for all of them)."""
    failed = []
    while _stopping:
        stack, thread, errors = _stopping.pop(0)
        thread.join()
        failed += [(stack, exc) for exc in errors]
    if failed:
        stack, exc = failed[0]
        raise RuntimeError(f"stopping the stack in {stack.data_dir} failed ({len(failed)} failed)") from exc


# ----- the tiny image, built for real once per session -----
# Built images for stacks, kept between test runs on this machine like DEB_CACHE (see ImageBuilds).
BUILT_IMAGES = os.path.join(tempfile.gettempdir(), "labcloud-test-images")


class ImageBuilds:
    """The `tiny` image, for the tests that need it built.

    get(): the session's own build, made for real by imagebuilder.build() in a directory of the
    session (Debian packages from DEB_CACHE), for the tests of the build and of booting what it
    made (tests/imagebuilder): at most two per session, without and with its disk image
    (--disk-image); one with the disk image serves those asking for the plain one too (the same
    files and one more).

    copy_to(): a copy for a stack's data dir (or for an image a test registers), which build()
    there then finds up to date, as on the second `make run` (a build takes 15-30 s on two cores;
    the first `make run` on a fresh data dir still builds, see test_make_run.py). It is the
    session's build if there is one, else the one in BUILT_IMAGES: a build kept between sessions on
    this machine (the browser tier's QEMU stack runs in a session of its own, after the realguest
    tier), brought up to date by build() itself (its fingerprint: package versions, the builder's
    source, the host's disk tools) and refreshed from each session's build with the disk image."""

    def __init__(self, base, machine_cache=BUILT_IMAGES):
        self.base, self.machine_cache = base, machine_cache
        self.built = {}  # disk_image -> (image dir, manifest of its build)

    def get(self, disk_image=False):
        """(image dir, manifest) of a session build of `tiny` (with disk.qcow2 if disk_image)."""
        from imagebuilder.build import build
        if True in self.built:
            return self.built[True]
        if not disk_image and False in self.built:
            return self.built[False]
        data_dir = os.path.join(self.base, "with-disk" if disk_image else "plain")
        manifest = build("tiny", data_dir, cache_dir=DEB_CACHE, disk_image=disk_image, log=lambda *_: None)
        self.built[disk_image] = (os.path.join(data_dir, "images", "tiny"), manifest)
        if disk_image:
            self._keep(*self.built[True])
        return self.built[disk_image]

    def copy_to(self, data_dir, name="tiny", disk_image=False):
        """A copy of a build of `tiny` as image `name` in data_dir: imagebuilder.build() there finds
        it up to date (its fingerprint names the inputs, not the image or the data dir)."""
        from imagebuilder.build import build
        target = os.path.join(data_dir, "images", name)
        if True in self.built or (False in self.built and not disk_image):
            shutil.copytree(self.get(disk_image)[0], target)
            return target
        with self._machine_lock():
            cached = os.path.join(self.machine_cache, "data")
            build("tiny", cached, cache_dir=DEB_CACHE, disk_image=disk_image, log=lambda *_: None)
            shutil.copytree(os.path.join(cached, "images", "tiny"), target)
        return target

    def _keep(self, image_dir, manifest):
        """BUILT_IMAGES gets this build, unless it has one of the same inputs already."""
        images = os.path.join(self.machine_cache, "data", "images")
        cached = os.path.join(images, "tiny")
        with self._machine_lock():
            try:
                with open(os.path.join(cached, "manifest.json")) as f:
                    if json.load(f).get("inputs_sha256") == manifest["inputs_sha256"]:
                        return
            except (OSError, ValueError):
                pass
            os.makedirs(images, exist_ok=True)
            fresh = tempfile.mkdtemp(prefix=".tiny.new-", dir=images)
            shutil.copytree(image_dir, fresh, dirs_exist_ok=True)
            stale = tempfile.mkdtemp(prefix=".tiny.old-", dir=images)
            if os.path.exists(cached):
                os.rename(cached, os.path.join(stale, "tiny"))
            os.rename(fresh, cached)
            shutil.rmtree(stale, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(images, "tiny.qcow2"))  # build() publishes the new one

    @contextlib.contextmanager
    def _machine_lock(self):
        """BUILT_IMAGES is shared by every test session on this machine: one at a time."""
        os.makedirs(self.machine_cache, exist_ok=True)
        with open(os.path.join(self.machine_cache, "lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def image_builds(tmp_path_factory):
    return ImageBuilds(str(tmp_path_factory.mktemp("image-builds")))
