"""Uploading images through the storage service in chunks, their visibility, versions, minimums
and delete (real qemu-img, real database, real RabbitMQ)."""
import base64
import hashlib
import os
import subprocess
import time
import uuid

import libvirt
import pytest
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy

from common.errors import Conflict, Forbidden, InvalidInput, NotFound, TooLarge
from hostagent.service import make_service
from services.storage.service import StorageService
from tests.instances.services import wait

ADMIN = {"id": 1, "username": "admin", "role": "admin", "projects": []}
TEACHER = {"id": 2, "username": "teach", "role": "user", "projects": [{"id": 10, "role": "manager"}]}
STUDENT = {"id": 3, "username": "stud", "role": "user", "projects": [{"id": 10, "role": "member"}]}
OUTSIDER = {"id": 4, "username": "other", "role": "user", "projects": [{"id": 20, "role": "member"}]}
CHUNK = 256 * 1024
MAX_BYTES = 8 << 20


def qcow2(path, size="64M", backing=None):
    command = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if backing:
        command += ["-F", "qcow2", "-b", str(backing)]
    subprocess.run(command + [str(path)] + ([] if backing else [size]), check=True)
    return path


class HostList:
    """Stands in for the instances service: the hosts storage asks to drop an image's copies."""
    name = "instances"
    hosts = []

    @rpc
    def list_hosts(self):
        return HostList.hosts


@pytest.fixture
def host(container_factory, service_config):
    """A real host agent on libvirt's test driver, listed up."""
    name = f"i-{uuid.uuid4().hex[:8]}"
    pool = f"ip-{uuid.uuid4().hex[:8]}"
    container_factory(make_service(name), service_config(
        LIBVIRT_URI="test:///default", POOL_NAME=pool, POOL_PATH=f"/labcloud-test/{pool}",
        HEARTBEAT_INTERVAL=60, STATS_INTERVAL=60)).start()
    HostList.hosts = [{"name": name, "up": True}, {"name": "down-host", "up": False}]
    HostList.pool = pool
    return name


@pytest.fixture
def storage(container_factory, service_config, migrated_database, tmp_path, host):
    config = service_config(DATABASE_URL=migrated_database("services.storage"), DATA_DIR=str(tmp_path / "data"),
                            IMAGE_MAX_BYTES=MAX_BYTES, IMAGE_SWEEP_INTERVAL=3600, HOST_RPC_TIMEOUT=5)
    container_factory(StorageService, config).start()
    container_factory(HostList, config).start()
    with ServiceRpcProxy("storage", config) as rpc:
        yield rpc


def upload(storage, actor, image_id, path, chunk=CHUNK):
    data = open(path, "rb").read()
    storage.start_image_upload(actor, image_id, len(data))
    for offset in range(0, len(data), chunk):
        storage.upload_image_chunk(actor, image_id, offset, base64.b64encode(data[offset:offset + chunk]).decode())
    return storage.finish_image_upload(actor, image_id, len(data))


def store_files(tmp_path):
    store = tmp_path / "data" / "images" / "store"
    return sorted(os.listdir(store)) if store.exists() else []


def test_an_upload_goes_queued_uploading_active_with_its_checksum(storage, tmp_path):
    disk = qcow2(tmp_path / "disk.qcow2", "1G")
    made = storage.create_image(STUDENT, {"name": "mine", "min_memory_mib": 256})
    assert (made["state"], made["visibility"], made["version"], made["user_id"]) == ("queued", "private", 1, 3)
    with pytest.raises(InvalidInput) as refused:
        storage.find_boot_image(STUDENT, made["id"])  # no file yet: it cannot boot
    assert "image" in refused.value.fields
    # A chunk delivered twice writes the same bytes at the same place.
    data = open(disk, "rb").read()
    storage.start_image_upload(STUDENT, made["id"], len(data))
    for offset in (0, 0, CHUNK, 0):
        storage.upload_image_chunk(STUDENT, made["id"], offset, base64.b64encode(data[offset:offset + CHUNK]).decode())
    for offset in range(2 * CHUNK, len(data), CHUNK):
        storage.upload_image_chunk(STUDENT, made["id"], offset, base64.b64encode(data[offset:offset + CHUNK]).decode())
    image = storage.finish_image_upload(STUDENT, made["id"], len(data))
    assert image["state"] == "active" and image["size_bytes"] == 1 << 30 and image["min_disk_gib"] == 1
    assert image["checksum"] == hashlib.sha256(data).hexdigest() and image["file_bytes"] == len(data)
    assert image["min_memory_mib"] == 256
    assert store_files(tmp_path) == [f"{made['id']}.qcow2"]
    assert storage.finish_image_upload(STUDENT, made["id"], len(data)) == image  # a repeat changes nothing
    assert storage.find_boot_image(STUDENT, "mine")["id"] == made["id"]


def text_file(path):
    path.write_bytes(b"not a disk at all" * 100)
    return path


def layered(path):
    return qcow2(path, backing=qcow2(path.with_name("base.qcow2")))


@pytest.mark.parametrize("make, fmt, why", [
    (text_file, "qcow2", "expected a qcow2 image"),
    (qcow2, "raw", "expected a raw image"),
    (layered, "qcow2", "has a backing file"),
])
def test_a_file_that_is_not_a_standalone_image_of_its_format_is_refused_and_removed(storage, tmp_path, make, fmt,
                                                                                    why):
    path = make(tmp_path / "upload.bin")
    made = storage.create_image(STUDENT, {"name": "bad", "format": fmt})
    with pytest.raises(InvalidInput) as refused:
        upload(storage, STUDENT, made["id"], path)
    assert refused.value.fields == {"file": [why]}
    failed = storage.show_image(STUDENT, made["id"])
    assert failed["state"] == "error" and why.split()[-1] in failed["reason"]
    assert store_files(tmp_path) == []


def test_past_the_size_limit_is_refused_naming_the_file(storage, tmp_path):
    made = storage.create_image(STUDENT, {"name": "big"})
    with pytest.raises(TooLarge) as refused:
        storage.start_image_upload(STUDENT, made["id"], MAX_BYTES + 1)  # declared too large: at once
    assert "file" in refused.value.fields
    storage.start_image_upload(STUDENT, made["id"], None)  # undeclared (chunked): at the chunk that passes it
    with pytest.raises(TooLarge):
        storage.upload_image_chunk(STUDENT, made["id"], MAX_BYTES - 10, base64.b64encode(b"x" * 11).decode())


@pytest.fixture
def sweeping_storage(container_factory, service_config, migrated_database, tmp_path):
    """Uploads idle for half a second are abandoned; the sweep looks five times a second."""
    config = service_config(DATABASE_URL=migrated_database("services.storage"), DATA_DIR=str(tmp_path / "data"),
                            IMAGE_SWEEP_INTERVAL=0.2, IMAGE_UPLOAD_TIMEOUT=0.5)
    container_factory(StorageService, config).start()
    with ServiceRpcProxy("storage", config) as rpc:
        yield rpc


def test_only_its_creator_uploads_and_an_abandoned_upload_is_swept(sweeping_storage, tmp_path):
    storage = sweeping_storage
    made = storage.create_image(TEACHER, {"name": "lab", "visibility": "project", "project": 10})
    with pytest.raises(Forbidden):
        storage.start_image_upload(STUDENT, made["id"], 10)  # a course member sees it, may not upload
    storage.start_image_upload(TEACHER, made["id"], 10)
    storage.upload_image_chunk(TEACHER, made["id"], 0, base64.b64encode(b"half").decode())
    assert store_files(tmp_path) == [f"{made['id']}.qcow2.part"]
    deadline = time.monotonic() + 10
    while storage.show_image(TEACHER, made["id"])["state"] != "error" and time.monotonic() < deadline:
        time.sleep(0.1)
    swept = storage.show_image(TEACHER, made["id"])
    assert swept["state"] == "error" and "abandoned" in swept["reason"]
    assert store_files(tmp_path) == []


@pytest.mark.parametrize("actor, request_, error, field", [
    (STUDENT, {"name": "x", "visibility": "public"}, Forbidden, "visibility"),
    (STUDENT, {"name": "x", "visibility": "project", "project": 10}, Forbidden, "project"),
    (TEACHER, {"name": "x", "visibility": "project", "project": 20}, Forbidden, "project"),
    (TEACHER, {"name": "x", "visibility": "project"}, InvalidInput, "project"),
    (TEACHER, {"name": "x", "project": 10}, InvalidInput, "project"),
    (ADMIN, {"name": "x", "visibility": "everyone"}, InvalidInput, "visibility"),
    (ADMIN, {"name": "x", "format": "vmdk"}, InvalidInput, "format"),
    (ADMIN, {"name": "x", "min_memory_mib": 1}, InvalidInput, "min_memory_mib"),
    (ADMIN, {"name": "x", "kernel_path": "k"}, InvalidInput, "kernel_path"),
])
def test_who_may_make_which_visibility(storage, actor, request_, error, field):
    with pytest.raises(error) as refused:
        storage.create_image(actor, request_)
    assert field in refused.value.fields


def test_visibility_decides_who_lists_gets_and_boots(storage, tmp_path):
    disk = qcow2(tmp_path / "d.qcow2")
    public = upload(storage, ADMIN, storage.create_image(ADMIN, {"name": "pub", "visibility": "public"})["id"], disk)
    course = upload(storage, TEACHER, storage.create_image(
        TEACHER, {"name": "lab", "visibility": "project", "project": 10})["id"], disk)
    private = upload(storage, STUDENT, storage.create_image(STUDENT, {"name": "mine"})["id"], disk)

    def names(actor):
        return {i["name"] for i in storage.list_images(actor)}
    assert names(STUDENT) == {"tiny", "pub", "lab", "mine"}
    assert names(TEACHER) == {"tiny", "pub", "lab"}      # not a student's private image
    assert names(OUTSIDER) == {"tiny", "pub"}
    assert names(ADMIN) == {"tiny", "pub", "lab", "mine"}
    for image in (course, private):
        with pytest.raises(NotFound):
            storage.show_image(OUTSIDER, image["id"])
        with pytest.raises(NotFound):
            storage.find_boot_image(OUTSIDER, image["id"])
    with pytest.raises(NotFound):
        storage.find_boot_image(OUTSIDER, "lab")
    assert storage.find_boot_image(OUTSIDER, public["id"])["name"] == "pub"


def test_a_name_uploaded_again_is_its_next_version_and_a_name_boots_the_newest(storage, tmp_path):
    disk = qcow2(tmp_path / "d.qcow2")
    first = upload(storage, STUDENT, storage.create_image(STUDENT, {"name": "deb"})["id"], disk)
    second = upload(storage, STUDENT, storage.create_image(STUDENT, {"name": "deb"})["id"], disk)
    queued = storage.create_image(STUDENT, {"name": "deb"})   # version 3, no file: not bootable
    assert (first["version"], second["version"], queued["version"]) == (1, 2, 3)
    assert storage.find_boot_image(STUDENT, "deb")["id"] == second["id"]
    assert storage.find_boot_image(STUDENT, first["id"])["id"] == first["id"]  # ids still work
    # Another owner's "deb" is another scope: their version 1; each boots their own.
    other = upload(storage, OUTSIDER, storage.create_image(OUTSIDER, {"name": "deb"})["id"], disk)
    assert other["version"] == 1 and storage.find_boot_image(OUTSIDER, "deb")["id"] == other["id"]
    # A name in several scopes the actor sees: their own first, then the course's, then public.
    upload(storage, ADMIN, storage.create_image(ADMIN, {"name": "deb", "visibility": "public"})["id"], disk)
    assert storage.find_boot_image(STUDENT, "deb")["id"] == second["id"]


def test_delete_removes_the_file_and_the_image_is_gone_for_good(storage, tmp_path):
    disk = qcow2(tmp_path / "d.qcow2")
    image = upload(storage, STUDENT, storage.create_image(STUDENT, {"name": "gone"})["id"], disk)
    with pytest.raises(NotFound):
        storage.delete_image(OUTSIDER, image["id"])
    public = upload(storage, ADMIN, storage.create_image(ADMIN, {"name": "p", "visibility": "public"})["id"], disk)
    with pytest.raises(Forbidden):
        storage.delete_image(TEACHER, public["id"])  # seen by all, deleted by its owner or an admin
    assert storage.delete_image(STUDENT, image["id"])["state"] == "deleted"
    assert f"{image['id']}.qcow2" not in store_files(tmp_path)
    with pytest.raises(NotFound):
        storage.show_image(STUDENT, image["id"])
    again = upload(storage, STUDENT, storage.create_image(STUDENT, {"name": "gone"})["id"], disk)
    assert again["version"] == 2 and again["id"] > image["id"]  # never the deleted one's id or version


def test_registering_by_path_still_works_through_create_image(storage, tmp_path):
    (tmp_path / "data").mkdir()
    qcow2(tmp_path / "data" / "cloud.qcow2", "2G")
    image = storage.create_image(ADMIN, {"name": "cloud", "source_path": "cloud.qcow2", "min_memory_mib": 128})
    assert (image["visibility"], image["state"], image["version"], image["min_memory_mib"]) == ("public", "active", 1,
                                                                                                 128)
    with pytest.raises(InvalidInput) as refused:
        storage.create_image(ADMIN, {"name": "c2", "source_path": "cloud.qcow2", "visibility": "private"})
    assert "visibility" in refused.value.fields
    with pytest.raises(Forbidden):
        storage.create_image(STUDENT, {"name": "c3", "source_path": "cloud.qcow2"})
    with pytest.raises(Conflict):
        storage.create_image(ADMIN, {"name": "cloud", "source_path": "cloud.qcow2"})


def pool_volumes():
    conn = libvirt.open("test:///default")  # the agent's in-process driver state
    try:
        return sorted(v.name() for v in conn.storagePoolLookupByName(HostList.pool).listAllVolumes())
    finally:
        conn.close()


def test_an_image_in_use_is_not_deleted_then_its_file_and_host_copies_go(storage, tmp_path, host):
    disk = qcow2(tmp_path / "d.qcow2")
    image = upload(storage, STUDENT, storage.create_image(STUDENT, {"name": "used"})["id"], disk)
    instance_id = str(uuid.uuid4())
    storage.create_root_disk({"instance_id": instance_id, "image_id": image["id"], "host": host, "size_gib": 1})
    assert f"image-{image['id']}.qcow2" in pool_volumes()
    with pytest.raises(Conflict) as refused:
        storage.delete_image(STUDENT, image["id"])
    assert refused.value.fields == {"image": [f"the root disk of instance {instance_id}"]}
    assert storage.show_image(STUDENT, image["id"])["state"] == "active"  # still there, still bootable
    storage.delete_root_disk({"instance_id": instance_id})
    assert storage.delete_image(STUDENT, image["id"])["state"] == "deleted"
    assert store_files(tmp_path) == []
    # The hosts' copies go in the background (image_deleted), so that a host that does not
    # answer cannot hold up the delete.
    wait(lambda: f"image-{image['id']}.qcow2" not in pool_volumes(), what="the host's copy deleted")
    with pytest.raises(NotFound):  # nothing new stands on it
        storage.create_root_disk({"instance_id": str(uuid.uuid4()), "image_id": image["id"], "host": host,
                                  "size_gib": 1})


def test_a_data_volume_over_an_image_follows_its_visibility_and_state(storage, tmp_path):
    disk = qcow2(tmp_path / "d.qcow2")
    private = upload(storage, STUDENT, storage.create_image(STUDENT, {"name": "mine"})["id"], disk)
    queued = storage.create_image(OUTSIDER, {"name": "later"})
    with pytest.raises(NotFound) as refused:   # someone else's private image looks missing
        storage.create_volume(OUTSIDER, {"name": "v", "image": private["id"]})
    assert "image" in refused.value.fields
    with pytest.raises(InvalidInput) as refused:   # no file yet
        storage.create_volume(OUTSIDER, {"name": "v", "image": queued["id"]})
    assert "image" in refused.value.fields


def upload_part(storage, actor, image_id, part, data):
    storage.start_image_upload(actor, image_id, len(data), part)
    storage.upload_image_chunk(actor, image_id, 0, base64.b64encode(data).decode(), part)
    return storage.finish_image_upload(actor, image_id, len(data), part)


KERNEL = b"\x7fELF" + b"\0" * 1000
RAMDISK = b"\x1f\x8b" + b"\0" * 500


def test_an_upload_carries_a_kernel_and_a_ramdisk_for_direct_kernel_boot(storage, tmp_path):
    disk = qcow2(tmp_path / "d.qcow2")
    made = storage.create_image(STUDENT, {"name": "kboot", "cmdline": "console=ttyS0 quiet"})
    upload_part(storage, STUDENT, made["id"], "kernel", KERNEL)
    upload_part(storage, STUDENT, made["id"], "ramdisk", RAMDISK)
    image = upload(storage, STUDENT, made["id"], disk)
    assert image["state"] == "active" and image["boot"] == "kernel"
    data = tmp_path / "data"
    assert storage.get_boot_files(made["id"]) == {
        "kernel": str(data / f"images/store/{made['id']}.kernel"),
        "initrd": str(data / f"images/store/{made['id']}.initrd"), "cmdline": "console=ttyS0 quiet"}
    assert (data / f"images/store/{made['id']}.kernel").read_bytes() == KERNEL
    with pytest.raises(Conflict):  # the image is active: its files are what they are
        storage.start_image_upload(STUDENT, made["id"], 10, "kernel")
    storage.delete_image(STUDENT, made["id"])
    assert store_files(tmp_path) == []


@pytest.mark.parametrize("part, data", [("kernel", b"MZ not a linux kernel" * 40), ("ramdisk", b"plain text" * 40)])
def test_a_kernel_or_ramdisk_that_is_not_one_is_refused_naming_it(storage, part, data, tmp_path):
    made = storage.create_image(STUDENT, {"name": "kbad"})
    with pytest.raises(InvalidInput) as refused:
        upload_part(storage, STUDENT, made["id"], part, data)
    assert part in refused.value.fields
    assert store_files(tmp_path) == [] and storage.show_image(STUDENT, made["id"])["state"] == "queued"
    with pytest.raises(InvalidInput) as refused:
        storage.start_image_upload(STUDENT, made["id"], 10, "initrd")
    assert "part" in refused.value.fields


def test_a_ramdisk_without_a_kernel_does_not_boot(storage, tmp_path):
    made = storage.create_image(STUDENT, {"name": "kno"})
    upload_part(storage, STUDENT, made["id"], "ramdisk", RAMDISK)
    with pytest.raises(InvalidInput) as refused:
        upload(storage, STUDENT, made["id"], qcow2(tmp_path / "d.qcow2"))
    assert "kernel" in refused.value.fields
    assert storage.show_image(STUDENT, made["id"])["state"] == "error"


def test_an_image_saved_from_one_with_an_uploaded_kernel_has_boot_files_of_its_own(storage, tmp_path, host):
    made = storage.create_image(TEACHER, {"name": "kparent", "cmdline": "console=ttyS0"})
    upload_part(storage, TEACHER, made["id"], "kernel", KERNEL)
    upload(storage, TEACHER, made["id"], qcow2(tmp_path / "d.qcow2"))
    instance_id = str(uuid.uuid4())
    storage.create_root_disk({"instance_id": instance_id, "image_id": made["id"], "host": host, "size_gib": 1})
    saving = storage.save_instance_image(TEACHER, {"instance_id": instance_id, "name": "kchild", "project": 10})
    assert (saving["state"], saving["visibility"], saving["project"], saving["boot"]) == ("saving", "project", 10,
                                                                                         "kernel")
    deadline = time.monotonic() + 30
    while storage.show_image(STUDENT, saving["id"])["state"] == "saving" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert storage.show_image(STUDENT, saving["id"])["state"] == "active"  # the course sees it
    storage.delete_root_disk({"instance_id": instance_id})
    storage.delete_image(TEACHER, made["id"])
    boot = storage.get_boot_files(saving["id"])
    assert boot["kernel"].endswith(f"{saving['id']}.kernel") and open(boot["kernel"], "rb").read() == KERNEL
    assert boot["cmdline"] == "console=ttyS0"


def test_a_host_that_does_not_answer_does_not_hold_up_a_delete(storage, tmp_path, host, container_factory,
                                                                 service_config):
    """A host listed up whose agent has stopped (its queue is there, nobody answers: every call
    waits HOST_RPC_TIMEOUT, 5 s here): the delete answers at once; the answering host's copy goes."""
    mute, pool = f"m-{uuid.uuid4().hex[:8]}", f"mp-{uuid.uuid4().hex[:8]}"
    agent = container_factory(make_service(mute), service_config(
        LIBVIRT_URI="test:///default", POOL_NAME=pool, POOL_PATH=f"/labcloud-test/{pool}",
        HEARTBEAT_INTERVAL=60, STATS_INTERVAL=60))
    agent.start()
    agent.stop()
    HostList.hosts = [{"name": mute, "up": True}] + HostList.hosts
    image = upload(storage, STUDENT, storage.create_image(STUDENT, {"name": "quick"})["id"],
                   qcow2(tmp_path / "d.qcow2"))
    instance_id = str(uuid.uuid4())
    storage.create_root_disk({"instance_id": instance_id, "image_id": image["id"], "host": host, "size_gib": 1})
    storage.delete_root_disk({"instance_id": instance_id})
    started = time.monotonic()
    assert storage.delete_image(STUDENT, image["id"])["state"] == "deleted"
    assert time.monotonic() - started < 2.5
    wait(lambda: f"image-{image['id']}.qcow2" not in pool_volumes(), timeout=20, what="the answering host's copy")
