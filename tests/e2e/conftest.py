import tempfile

import pytest

from labcloud.rabbit import free_port
from labcloud.stack import Stack
from tests.e2e.api import ADMIN_PASSWORD

FAST_TIMERS = {"STATS_INTERVAL": "1", "HEARTBEAT_INTERVAL": "1", "METRICS_STEP": "1"}


@pytest.fixture(scope="module")
def stack(rabbit_node, vhosts):
    """The whole system as processes, as `make run` starts it, on the session's RabbitMQ node."""
    data_dir = tempfile.mkdtemp(prefix="labcloud-e2e-")
    with Stack(data_dir, port=free_port(), amqp_uri=rabbit_node.amqp_uri_for(vhosts.take()),
               admin_password=ADMIN_PASSWORD, extra_env=FAST_TIMERS, quiet=True) as running:
        yield running
