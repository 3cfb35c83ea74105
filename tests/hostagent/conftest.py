import uuid

import libvirt
import pytest

from hostagent import storage_pool


@pytest.fixture
def conn():
    """A connection to the in-process test driver. Its state is shared by every connection in
    this process, so tests use unique names and remove what they made."""
    connection = libvirt.open("test:///default")
    yield connection
    connection.close()


@pytest.fixture
def pool(conn):
    name = f"t-{uuid.uuid4().hex[:8]}"
    made = storage_pool.ensure_pool(conn, name, f"/labcloud-test/{name}")
    yield made
    for volume in made.listAllVolumes(0):
        volume.delete(0)
    made.destroy()
    made.undefine()
