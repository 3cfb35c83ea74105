"""The host's dir pool and qcow2 volumes, against libvirt's test:///default driver."""
import os

import pytest

from common.errors import HostOperationFailed
from hostagent import storage_pool

GIB = 1 << 30


def test_ensure_pool_is_idempotent_and_active(conn, pool):
    again = storage_pool.ensure_pool(conn, pool.name(), "/ignored/when/defined")
    assert again.UUIDString() == pool.UUIDString()
    assert again.isActive() and again.autostart()
    assert storage_pool.pool_path(again) == f"/labcloud-test/{pool.name()}"


def test_inactive_pool_is_started(conn, pool):
    pool.destroy()
    assert storage_pool.ensure_pool(conn, pool.name(), "/x").isActive()


def test_image_then_copy_on_write_volume(conn, pool):
    image = storage_pool.ensure_image(conn, pool, 7, 64 << 20, upload=False)
    assert image == {"name": "image-7.qcow2", "path": f"{storage_pool.pool_path(pool)}/image-7.qcow2",
                     "capacity_bytes": 64 << 20, "format": "qcow2"}
    assert storage_pool.ensure_image(conn, pool, 7, 64 << 20, upload=False) == image

    root = storage_pool.create_volume(conn, pool, "root-a.qcow2", GIB, "qcow2", image["path"])
    assert root["capacity_bytes"] == GIB and root["format"] == "qcow2"
    xml = pool.storageVolLookupByName("root-a.qcow2").XMLDesc(0)
    assert f"<backingStore>\n    <path>{image['path']}</path>\n    <format type='qcow2'/>" in xml
    # Same name again (a redelivered request): the existing volume, not an error.
    assert storage_pool.create_volume(conn, pool, "root-a.qcow2", 2 * GIB, "qcow2", image["path"]) == root

    assert storage_pool.delete_volume(pool, "root-a.qcow2") is True
    assert storage_pool.delete_volume(pool, "root-a.qcow2") is False
    assert storage_pool.find_volume(pool, "root-a.qcow2") is None


def test_upload_needs_the_source_file(conn, pool, tmp_path):
    with pytest.raises(HostOperationFailed):
        storage_pool.ensure_image(conn, pool, 8, GIB, source_path=str(tmp_path / "missing.qcow2"))
    assert storage_pool.find_volume(pool, "image-8.qcow2") is None


def test_failed_upload_leaves_no_volume(conn, pool, tmp_path):
    source = tmp_path / "tiny.qcow2"
    source.write_bytes(os.urandom(4096))
    # The test driver has no volume upload: the error surfaces and the half-made volume is gone.
    with pytest.raises(Exception):
        storage_pool.ensure_image(conn, pool, 9, GIB, source_path=str(source), upload=True)
    assert storage_pool.find_volume(pool, "image-9.qcow2") is None
