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


@pytest.fixture
def netns():
    """A network namespace of the test's own with an empty bridge `lab0` (up) carrying no
    addresses yet: tests add what they need (netutil.add_address)."""
    from common import netns as ns
    name = f"lct-{uuid.uuid4().hex[:8]}"
    ns.create(name)
    try:
        ns.run(name, ["ip", "link", "add", "lab0", "type", "bridge"])
        ns.run(name, ["ip", "link", "set", "lab0", "up"])
        yield name
    finally:
        ns.delete(name)

