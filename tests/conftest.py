"""Test-session fixtures: one private RabbitMQ node for the whole session, a clean vhost-free
config per test (queues are named per service, and every test tears its containers down)."""
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
import tempfile

import pytest

from labcloud.rabbit import RabbitNode


# Tiers by folder: `make test` runs the fast tier, then e2e, then realguest.
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
    yield node
    node.stop()


class VhostPool:
    """A fresh vhost per test, so durable queues and unacked messages of one test never reach the
    next. vhosts are made in batches because each rabbitmqctl call starts an Erlang VM."""

    def __init__(self, node, batch=100):
        self.node, self.batch, self.free, self.made = node, batch, [], 0

    def take(self):
        if not self.free:
            names = [f"test-{self.made + i}" for i in range(self.batch)]
            self.node.add_vhosts(names)
            self.made += self.batch
            self.free.extend(names)
        return self.free.pop(0)


@pytest.fixture(scope="session")
def vhosts(rabbit_node):
    return VhostPool(rabbit_node)


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


@pytest.fixture
def migrated_database():
    """Returns a function (service package) -> migrated database URL in a fresh temp dir."""
    from common.migrate import upgrade
    created = []

    def make(service_package):
        path = tempfile.mkdtemp(prefix="labcloud-db-")
        created.append(path)
        url = f"sqlite:///{path}/{service_package.rsplit('.', 1)[-1]}.sqlite"
        upgrade(service_package, url)
        return url
    return make


@pytest.fixture
def service_config(rabbit_config):
    def make(**extra):
        config = dict(rabbit_config)
        config.update(extra)
        return config
    return make
