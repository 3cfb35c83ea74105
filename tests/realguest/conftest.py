import os
import tempfile

import pytest

from labcloud.rabbit import free_port
from labcloud.stack import Stack
from tests.e2e.api import ADMIN_PASSWORD

# Debian packages the image builder downloads: kept between test runs on this machine.
IMAGE_CACHE = os.path.join(tempfile.gettempdir(), "labcloud-debcache")


@pytest.fixture(scope="module")
def qemu_stack(rabbit_node, vhosts):
    """The whole system with a real hypervisor host: private libvirtd in a network namespace,
    QEMU (TCG) guests booted from the tiny image."""
    data_dir = tempfile.mkdtemp(prefix="labcloud-real-")
    with Stack(data_dir, port=free_port(), amqp_uri=rabbit_node.amqp_uri_for(vhosts.take()),
               hypervisor="qemu", admin_password=ADMIN_PASSWORD, image_cache_dir=IMAGE_CACHE,
               extra_env={"STATS_INTERVAL": "2", "HEARTBEAT_INTERVAL": "1", "METRICS_STEP": "2"},
               quiet=True) as running:
        yield running
