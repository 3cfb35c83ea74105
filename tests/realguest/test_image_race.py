"""Concurrent creates of one image on a fresh real host (private QEMU libvirtd): the image is
copied to the host once, nobody sees it half-uploaded, every call succeeds (the report: the second
of two instances failed with `no storage vol with matching path .../image-1.qcow2`)."""
import hashlib
import json
import os
import subprocess
import uuid

import eventlet
import pytest
from nameko.standalone.rpc import ClusterRpcProxy, ServiceRpcProxy

from hostagent.service import make_service
from tests.hostagent.qemu_hosts import private_qemu_host

CALLERS = 6


@pytest.fixture(scope="module")
def qemu_host(tmp_path_factory):
    yield from private_qemu_host(tmp_path_factory, "ir1")


@pytest.fixture
def source_image(tmp_path):
    """A qcow2 of 8 MiB of random data (virtual size 96 MiB): big enough that its upload takes a
    while, and its content tells a complete copy from a partial one."""
    raw = tmp_path / "data.raw"
    raw.write_bytes(os.urandom(8 << 20))
    subprocess.run(["qemu-img", "resize", "-q", "-f", "raw", str(raw), "96M"], check=True)
    image = tmp_path / "image.qcow2"
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(image)], check=True)
    return str(image)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_six_concurrent_creates_of_one_image_on_a_fresh_pool(container_factory, service_config, qemu_host,
                                                             source_image, tmp_path):
    pool = f"race-{uuid.uuid4().hex[:6]}"
    config = service_config(LIBVIRT_URI=qemu_host.uri, HOST_NETWORK="labcloud", POOL_NAME=pool,
                            POOL_PATH=str(tmp_path / "pool"),
                            CONSOLE_DIR=str(tmp_path / "console"), HEARTBEAT_INTERVAL=5, STATS_INTERVAL=60,
                            max_workers=16)
    container_factory(make_service("ir1"), config).start()

    def create(index):
        with ClusterRpcProxy(config, timeout=120) as cluster:
            host = cluster.hostagent_ir1
            image = host.ensure_image({"image_id": 1, "format": "qcow2", "capacity_bytes": 1 << 20,
                                       "source_path": source_image})
            root = host.create_volume({"name": f"root-{index}.qcow2", "capacity_bytes": 1 << 30,
                                       "format": "qcow2", "backing_path": image["path"]})
            return image, root

    results = list(eventlet.GreenPool(CALLERS).imap(create, range(CALLERS)))

    images = [image for image, _root in results]
    assert all(image == images[0] for image in images)
    image = images[0]
    # The capacity is the uploaded header's (96 MiB), not the 1 MiB placeholder: read back
    # without a pool refresh.
    assert image["capacity_bytes"] == 96 << 20 and image["format"] == "qcow2"
    assert sha256(image["path"]) == sha256(source_image)
    with ServiceRpcProxy("hostagent_ir1", config, timeout=60) as host:
        names = sorted(volume["name"] for volume in host.get_inventory()["volumes"])
        assert names == sorted(["image-1.qcow2"] + [f"root-{i}.qcow2" for i in range(CALLERS)])
        for _image, root in results:
            info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", root["path"]],
                                             check=True, capture_output=True, text=True).stdout)
            assert info["backing-filename"] == image["path"] and info["virtual-size"] == 1 << 30
        for name in names:
            host.delete_volume({"name": name})
