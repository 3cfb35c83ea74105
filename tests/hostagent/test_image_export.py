"""hostagent/image_export.py with the real qemu-img: a root disk (a qcow2 over an image) flattened
into a standalone qcow2 holding the same bytes, a repeat rewriting it, and a failure leaving nothing."""
import json
import subprocess

import pytest

from common.errors import HostOperationFailed
from hostagent import image_export

MIB = 1 << 20


def qemu_img(*args):
    return subprocess.run(["qemu-img", *args], check=True, capture_output=True, text=True).stdout


def qemu_io(path, command):
    return subprocess.run(["qemu-io", "-f", "qcow2", "-c", command, str(path)], capture_output=True, text=True)


@pytest.fixture
def root_disk(tmp_path):
    """base.qcow2 (bytes 0x61 at 0) under root.qcow2 (bytes 0x62 at 1 MiB)."""
    base, root = tmp_path / "base.qcow2", tmp_path / "root.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(base), "8M")
    assert qemu_io(base, "write -P 0x61 0 4k").returncode == 0
    qemu_img("create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(root))
    assert qemu_io(root, f"write -P 0x62 {MIB} 4k").returncode == 0
    return root


def holds(path, offset, byte):
    done = qemu_io(path, f"read -P {byte} {offset} 4k")
    return done.returncode == 0 and "Pattern verification failed" not in done.stdout


def test_a_layered_disk_becomes_one_standalone_file_with_both_layers_bytes(root_disk, tmp_path):
    (tmp_path / "store").mkdir()
    destination = str(tmp_path / "store" / "7.qcow2.part")
    exported = image_export.export(str(root_disk), 8 * MIB, destination)
    info = json.loads(qemu_img("info", "--output=json", destination))
    assert info["format"] == "qcow2" and "backing-filename" not in info and info["virtual-size"] == 8 * MIB
    assert exported == {"path": destination, "bytes": (tmp_path / "store" / "7.qcow2.part").stat().st_size}
    assert holds(destination, 0, "0x61") and holds(destination, MIB, "0x62")
    assert not holds(destination, MIB, "0x61")  # the check can fail
    assert image_export.export(str(root_disk), 8 * MIB, destination)["path"] == destination  # a repeat


def test_a_failed_copy_leaves_nothing_and_says_why(tmp_path):
    destination = tmp_path / "8.qcow2.part"
    destination.write_bytes(b"half written")
    with pytest.raises(HostOperationFailed, match="could not export"):
        image_export.export(str(tmp_path / "missing.qcow2"), MIB, str(destination))
    assert not destination.exists()


def test_the_test_driver_gets_an_empty_disk_of_the_volumes_size(tmp_path):
    destination = str(tmp_path / "9.qcow2.part")
    image_export.export("/not/a/file", 3 * MIB, destination, fake=True)
    assert json.loads(qemu_img("info", "--output=json", destination))["virtual-size"] == 3 * MIB
