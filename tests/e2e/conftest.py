import tempfile

import pytest

from labcloud.rabbit import free_port
from labcloud.stack import Stack
from tests.conftest import stop_later
from tests.e2e.api import ADMIN_PASSWORD

FAST_TIMERS = {"STATS_INTERVAL": "1", "HEARTBEAT_INTERVAL": "1", "METRICS_STEP": "1", "SCHEDULE_INTERVAL": "1"}


# Real argon2id at the fast tier's cost (tests/instances/services.py CHEAP_HASH) in the stacks of
# the e2e and browser tiers: at its default cost (64 MiB, 3 passes, 4 lanes) each signup and login
# took both cores for a fraction of a second, and the walks and fuzzers make hundreds (the accounts
# service was the busiest process of a route walk). Hashing, verifying and rehashing are the same
# code; the real-guest stacks and `make run` keep the default cost.
CHEAP_PASSWORD_HASH = {"PASSWORD_HASH_TIME_COST": "1", "PASSWORD_HASH_MEMORY_COST_KIB": "8",
                       "PASSWORD_HASH_PARALLELISM": "1"}


class BackgroundStoppedStack(Stack):
    """A Stack whose context exit stops it while the next tests run (tests/conftest.py stop_later:
    its services take seconds to end; the session waits for every stop, and raises its error,
    before its RabbitMQ node stops)."""

    def __exit__(self, *exc):
        stop_later(self)


def stack_on(rabbit_node, vhosts, extra_env=FAST_TIMERS, hosts=1):
    """The whole system as processes, as `make run` starts it, on the session's RabbitMQ node (its
    own vhost): a context manager."""
    return BackgroundStoppedStack(tempfile.mkdtemp(prefix="labcloud-e2e-"), port=free_port(),
                                  amqp_uri=rabbit_node.amqp_uri_for(vhosts.take()),
                                  admin_password=ADMIN_PASSWORD, extra_env=dict(CHEAP_PASSWORD_HASH, **extra_env),
                                  hosts=hosts, quiet=True)


# The modules that need no special timers share one stack (each start costs seconds of the suite's
# budget). Their logins all come from 127.0.0.1 and the admin logs in from each of them: the rate
# limits (tested on their own stack in test_access_control.py) are out of the way here.
SHARED_ENV = dict(FAST_TIMERS, RATE_LIMIT_PER_USERNAME="100000", RATE_LIMIT_PER_ADDRESS="100000")


@pytest.fixture(scope="package")
def stack(rabbit_node, vhosts):
    with stack_on(rabbit_node, vhosts, SHARED_ENV) as running:
        yield running


@pytest.fixture(scope="package")
def two_host_stack(rabbit_node, vhosts):
    """Two hosts of its own, for the modules that migrate instances and drain hosts (on the shared
    stack they would move, and count, the instances other modules left there)."""
    with stack_on(rabbit_node, vhosts, SHARED_ENV, hosts=2) as running:
        yield running


@pytest.fixture(scope="package")
def world(rabbit_node, vhosts):
    """The authorisation walks' world (tests/e2e/walk_world.py), one stack for the REST and the
    portal walk."""
    from tests.e2e.walk_world import ENV, World
    with stack_on(rabbit_node, vhosts, ENV) as stack:
        yield World(stack.url)
