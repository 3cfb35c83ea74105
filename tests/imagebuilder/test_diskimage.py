"""disk.qcow2 without booting it: partition table, boot code, FAT contents, /data partition; and the
bare-QEMU pieces for booting it (command line, the metadata relay). Host tools (syslinux, mtools,
dosfstools, fdisk, qemu-utils, e2fsprogs) come with `make test`: missing ones fail."""
import json
import os
import socket
import subprocess
import sys

import pytest

from imagebuilder import bareboot, diskimage, rootdisk

MIB = 1024 * 1024


def mtools(command, *args, raw):
    """An mtools command on the boot partition of the raw disk `raw`."""
    return subprocess.run([command, "-i", f"{raw}@@{diskimage.BOOT_START}", *args], check=True,
                          capture_output=True, env=dict(os.environ, MTOOLS_SKIP_CHECK="1")).stdout


@pytest.fixture(scope="module")
def disk(tmp_path_factory):
    """A disk made from a fake kernel and initrd and a real (small) ext4 template; also as raw."""
    tmp = tmp_path_factory.mktemp("disk")
    (tmp / "bzImage").write_bytes(b"fake kernel " * 1000)
    (tmp / "initrd.img").write_bytes(b"fake initrd " * 1000)
    (tmp / "staging").mkdir()
    (tmp / "staging" / "hello").write_text("from the template\n")
    rootdisk.make_template(str(tmp / "staging"), str(tmp / "root.raw"), str(tmp / "root.qcow2"), size_mib=8)
    summary = diskimage.make(str(tmp / "disk.qcow2"), str(tmp / "bzImage"), str(tmp / "initrd.img"),
                             str(tmp / "root.qcow2"), str(tmp / "work"))
    subprocess.run(["qemu-img", "convert", "-O", "raw", tmp / "disk.qcow2", tmp / "disk.raw"], check=True)
    subprocess.run(["qemu-img", "convert", "-O", "raw", tmp / "root.qcow2", tmp / "root.raw"], check=True)
    return tmp, summary


def test_qcow2_with_an_mbr_boot_partition_and_the_data_partition(disk):
    tmp, summary = disk
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", tmp / "disk.qcow2"],
                                     check=True, capture_output=True).stdout)
    assert info["format"] == "qcow2" and info["virtual-size"] == summary["disk_image_virtual_size"]
    table = json.loads(subprocess.run(["sfdisk", "--json", tmp / "disk.raw"], check=True,
                                      capture_output=True).stdout)["partitiontable"]
    boot, data = table["partitions"]
    assert table["label"] == "dos"
    assert (boot["start"], boot["size"], boot["type"], boot.get("bootable")) == (2048, 32 * MIB // 512, "e", True)
    assert (data["start"], data["size"], data["type"]) == (2048 + 32 * MIB // 512, 8 * MIB // 512, "83")
    assert not data.get("bootable")
    assert summary["disk_image_data_partition"] == 2 and summary["disk_image_cmdline"] == "console=ttyS0"
    assert os.path.getsize(tmp / "disk.raw") == (data["start"] + data["size"]) * 512


def test_boot_code_is_syslinux_mbr(disk):
    tmp, _ = disk
    with open(tmp / "disk.raw", "rb") as f:
        sector = f.read(512)
    with open(diskimage.MBR_BIN, "rb") as f:
        assert sector[:440] == f.read()[:440]
    assert sector[510:] == b"\x55\xaa"


def test_boot_partition_holds_syslinux_kernel_and_initrd(disk):
    tmp, _ = disk
    raw = tmp / "disk.raw"
    listing = mtools("mdir", "-a", "::/", raw=raw).decode()
    for name in ("ldlinux  sys", "ldlinux  c32", "bzImage", "initrd   img", "syslinux cfg"):
        assert name in listing
    assert mtools("mtype", "::/bzImage", raw=raw) == (tmp / "bzImage").read_bytes()
    assert mtools("mtype", "::/initrd.img", raw=raw) == (tmp / "initrd.img").read_bytes()
    cfg = mtools("mtype", "::/syslinux.cfg", raw=raw).decode()
    assert cfg == diskimage.syslinux_cfg()
    assert "LINUX /bzImage" in cfg and "INITRD /initrd.img" in cfg and "APPEND console=ttyS0\n" in cfg
    # DHCP and the default metadata URL, like an image made elsewhere
    assert "ip=" not in cfg and "labcloud.metadata" not in cfg
    assert b"SYSLINUX" in (raw.read_bytes()[diskimage.BOOT_START:diskimage.BOOT_START + 512])


def test_data_partition_is_the_template_byte_for_byte(disk):
    tmp, _ = disk
    start = diskimage.BOOT_START + 32 * MIB
    template = (tmp / "root.raw").read_bytes()
    assert (tmp / "disk.raw").read_bytes()[start:] == template


def test_disk_boot_command_has_no_kernel_and_forwards_the_metadata_address():
    cmd = bareboot.qemu_command("/img", "/tmp/d.qcow2", 2222, None, "/tmp/c.log", kernel=None,
                                network="dhcp", metadata_port=8123)
    assert "-kernel" not in cmd and "-append" not in cmd and "-initrd" not in cmd
    netdev = cmd[cmd.index("-netdev") + 1]
    assert netdev.startswith("user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22,net=169.254.0.0/16,")
    assert "guestfwd=tcp:169.254.169.254:80-cmd:" in netdev
    # every comma inside the relay command is doubled, so QEMU does not split the option there
    relay = netdev.split("-cmd:", 1)[1]
    assert "," not in relay.replace(",,", "")
    with pytest.raises(ValueError):
        bareboot.qemu_command("/img", "/tmp/d.qcow2", 2222, None, "/tmp/c.log", kernel=None, network="static")


def test_relay_carries_one_http_request_to_the_metadata_server():
    """What QEMU runs per guest connection: the connection is its stdin/stdout."""
    with bareboot.MetadataServer("relayvm", "ssh-ed25519 AAAA test") as metadata:
        guest_end, relay_end = socket.socketpair()
        with guest_end, relay_end:
            proc = subprocess.Popen([sys.executable, "-S", "-c", bareboot.RELAY_CODE, str(metadata.port)],
                                    stdin=relay_end, stdout=relay_end)
            relay_end.close()
            guest_end.sendall(b"GET /latest/meta-data/hostname HTTP/1.0\r\n\r\n")
            guest_end.settimeout(10)
            answer = b""
            while chunk := guest_end.recv(4096):
                answer += chunk
            assert proc.wait(timeout=10) == 0
    assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"\r\n\r\nrelayvm")
    assert metadata.requests == ["/latest/meta-data/hostname"]
