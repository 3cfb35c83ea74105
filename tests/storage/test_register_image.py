"""Registering images through the storage service (real qemu-img, real database, real RabbitMQ)."""
import subprocess

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from common.errors import Conflict, Forbidden, InvalidInput
from services.storage.service import StorageService

ADMIN = {"id": 1, "username": "admin", "role": "admin"}
STUDENT = {"id": 2, "username": "sam", "role": "user"}


@pytest.fixture
def data_dir(tmp_path):
    (tmp_path / "images" / "course").mkdir(parents=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(tmp_path / "images" / "course" / "root.qcow2"),
                    "64M"], check=True)
    (tmp_path / "images" / "course" / "vmlinux").write_bytes(b"\x7fELF kernel")
    (tmp_path / "images" / "course" / "initrd.img").write_bytes(b"initrd")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(tmp_path / "cloud.qcow2"), "3G"], check=True)
    (tmp_path / "notes.txt").write_text("not a disk")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(tmp_path / "cloud.qcow2"),
                    str(tmp_path / "layered.qcow2")], check=True)
    return tmp_path


@pytest.fixture
def storage(container_factory, service_config, migrated_database, data_dir):
    config = service_config(DATABASE_URL=migrated_database("services.storage"), DATA_DIR=str(data_dir))
    container_factory(StorageService, config).start()
    with ServiceRpcProxy("storage", config) as rpc:
        yield rpc


def test_a_disk_image_made_elsewhere_and_a_built_course_image(storage, data_dir):
    cloud = storage.register_image(ADMIN, {"name": "debian-cloud", "source_path": str(data_dir / "cloud.qcow2"),
                                           "description": "cloud-init image"})
    assert cloud["boot"] == "disk" and cloud["format"] == "qcow2"
    assert cloud["size_bytes"] == 3 << 30 and cloud["min_disk_gib"] == 3  # never smaller than the image
    assert storage.get_boot_files(cloud["id"]) is None  # it boots its own bootloader

    course = storage.register_image(ADMIN, {
        "name": "course-a", "source_path": "images/course/root.qcow2", "kernel_path": "images/course/vmlinux",
        "initrd_path": "images/course/initrd.img", "cmdline": "console=ttyS0 quiet", "min_disk_gib": 2})
    assert course["boot"] == "kernel" and course["min_disk_gib"] == 2
    assert storage.get_boot_files(course["id"]) == {
        "kernel": str(data_dir / "images/course/vmlinux"), "initrd": str(data_dir / "images/course/initrd.img"),
        "cmdline": "console=ttyS0 quiet"}
    assert {i["name"] for i in storage.list_images()} == {"tiny", "debian-cloud", "course-a"}


def test_only_an_admin_registers(storage, data_dir):
    with pytest.raises(Forbidden):
        storage.register_image(STUDENT, {"name": "mine", "source_path": str(data_dir / "cloud.qcow2")})
    assert [i["name"] for i in storage.list_images()] == ["tiny"]


@pytest.mark.parametrize("request_,field", [
    ({"name": "Bad Name", "source_path": "cloud.qcow2"}, "name"),
    ({"name": "x", "source_path": "missing.qcow2"}, "source_path"),
    ({"name": "x", "source_path": "notes.txt"}, "source_path"),  # not a disk image
    ({"name": "x", "source_path": "cloud.qcow2", "format": "raw"}, "source_path"),  # it is qcow2
    ({"name": "x", "source_path": "layered.qcow2"}, "source_path"),  # not self-contained
    ({"name": "x", "source_path": "cloud.qcow2", "format": "vmdk"}, "format"),
    ({"name": "x", "source_path": "cloud.qcow2", "initrd_path": "images/course/initrd.img"}, "initrd_path"),
    ({"name": "x", "source_path": "cloud.qcow2", "kernel_path": "images/course/none"}, "kernel_path"),
    ({"name": "x", "source_path": "cloud.qcow2", "min_disk_gib": 0}, "min_disk_gib"),
    ({"name": "x"}, "source_path"),
])
def test_bad_requests_name_the_field(storage, request_, field):
    with pytest.raises(InvalidInput) as refused:
        storage.register_image(ADMIN, request_)
    assert field in refused.value.fields
    assert [i["name"] for i in storage.list_images()] == ["tiny"]


def test_a_name_is_registered_once(storage):
    storage.register_image(ADMIN, {"name": "debian-cloud", "source_path": "cloud.qcow2"})
    with pytest.raises(Conflict) as refused:
        storage.register_image(ADMIN, {"name": "debian-cloud", "source_path": "cloud.qcow2"})
    assert "name" in refused.value.fields
    with pytest.raises(Conflict):
        storage.register_image(ADMIN, {"name": "tiny", "source_path": "cloud.qcow2"})
