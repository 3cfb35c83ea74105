import gzip
import os
import stat
import subprocess

import pytest

from imagebuilder import cpio


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "busybox").write_bytes(b"\x7fELF" + bytes(range(256)) * 3)
    os.chmod(root / "bin" / "busybox", 0o755)
    os.symlink("/bin/busybox", root / "bin" / "sh")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:*:0:0:root:/root:/bin/sh\n")
    (root / "empty").mkdir()
    (root / "init").write_text("#!/bin/busybox sh\n")
    os.chmod(root / "init", 0o755)
    return root


def test_round_trip(tree, tmp_path):
    out = tmp_path / "initrd.img"
    cpio.write_initramfs(str(out), str(tree))
    entries = {name: (mode, data, rdev) for name, mode, data, rdev in cpio.read_newc(gzip.decompress(out.read_bytes()))}
    assert entries["bin/busybox"][1] == (tree / "bin" / "busybox").read_bytes()
    assert stat.S_IMODE(entries["bin/busybox"][0]) == 0o755 and stat.S_ISREG(entries["bin/busybox"][0])
    assert stat.S_ISLNK(entries["bin/sh"][0]) and entries["bin/sh"][1] == b"/bin/busybox"
    assert stat.S_ISDIR(entries["empty"][0])
    assert entries["etc/passwd"][1].startswith(b"root:")
    assert stat.S_ISCHR(entries["dev/console"][0]) and entries["dev/console"][2] == (5, 1)
    # parents come before children (the kernel creates entries in archive order)
    names = list(entries)
    assert names.index("bin") < names.index("bin/busybox")


def test_archive_is_reproducible(tree, tmp_path):
    cpio.write_initramfs(str(tmp_path / "a"), str(tree))
    cpio.write_initramfs(str(tmp_path / "b"), str(tree))
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_gnu_cpio_lists_it(tree, tmp_path):
    out = tmp_path / "initrd.img"
    cpio.write_initramfs(str(out), str(tree))
    listing = subprocess.run(["cpio", "-t"], input=gzip.decompress(out.read_bytes()), capture_output=True).stdout
    assert {"bin/busybox", "bin/sh", "dev/console", "init"} <= set(listing.decode().split())


def test_duplicate_entries_are_refused(tmp_path):
    writer = cpio.CpioWriter(open(tmp_path / "x", "wb"))
    writer.add_dir("dev")
    with pytest.raises(ValueError):
        writer.add_dir("dev")
