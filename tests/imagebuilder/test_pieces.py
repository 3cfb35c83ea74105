"""Small pieces of the builder: ELF parsing, module closure, kernel extraction, package cache."""
import gzip
import lzma
import shutil

import pytest

from imagebuilder import elfdeps, kernel, modules, packages


def test_elf_needed_of_a_dynamic_host_binary():
    assert "libc.so.6" in elfdeps.needed(shutil.which("ls"))


def test_module_closure(tmp_path):
    moddir = tmp_path / "lib" / "modules" / "6.1.0-9-amd64"
    moddir.mkdir(parents=True)
    (moddir / "modules.dep").write_text(
        "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n"
        "kernel/drivers/virtio/virtio.ko:\n"
        "kernel/drivers/virtio/virtio_ring.ko:\n"
        "kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko\n"
        "kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko\n"
        "kernel/fs/jbd2/jbd2.ko:\n")
    assert modules.closure(str(moddir), ["virtio_pci", "virtio_rng"]) == [
        "kernel/drivers/char/hw_random/virtio-rng.ko", "kernel/drivers/virtio/virtio.ko",
        "kernel/drivers/virtio/virtio_pci.ko", "kernel/drivers/virtio/virtio_ring.ko"]
    with pytest.raises(KeyError):
        modules.closure(str(moddir), ["nonexistent"])


@pytest.mark.parametrize("compress", [lambda b: lzma.compress(b, format=lzma.FORMAT_XZ), gzip.compress])
def test_extract_vmlinux(compress):
    elf = b"\x7fELF\x02\x01\x01" + b"kernel" * 1000
    # a decoy stream that does not hold an ELF file comes first, like setup code that looks compressed
    bzimage = b"MZ setup" + compress(b"not a kernel") + b"\0" * 13 + compress(elf) + b"\x00\x10\x00\x00trailer"
    assert kernel.extract_vmlinux(bzimage) == elf
    with pytest.raises(kernel.KernelError):
        kernel.extract_vmlinux(b"no kernel here")


def test_cached_deb_matches_exact_version_with_epoch(tmp_path):
    (tmp_path / "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb").write_bytes(b"")
    (tmp_path / "busybox-static_1%3a1.30.0-1_amd64.deb").write_bytes(b"")
    hit = packages.cached_deb(str(tmp_path), "busybox-static", "1:1.35.0-4+deb12u1+b1")
    assert hit.endswith("busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb")
    assert packages.cached_deb(str(tmp_path), "busybox-static", "1:1.36.0-1") is None
    assert packages.cached_deb(str(tmp_path), "busybox", "1:1.35.0-4+deb12u1+b1") is None


def test_fetch_downloads_only_what_is_missing(tmp_path, monkeypatch):
    (tmp_path / "zlib1g_1%3a1.2.13.dfsg-1_amd64.deb").write_bytes(b"")
    monkeypatch.setattr(packages, "candidate_versions",
                        lambda names: {"zlib1g": "1:1.2.13.dfsg-1", "libgmp10": "2:6.2.1+dfsg1-1.1"})
    downloads = []

    def fake_download(cache_dir, names):
        downloads.append(list(names))
        for name in names:
            (tmp_path / f"{name}_2%3a6.2.1+dfsg1-1.1_amd64.deb").write_bytes(b"")
        return type("Proc", (), {"returncode": 0, "stderr": ""})()
    monkeypatch.setattr(packages, "_download", fake_download)
    debs = packages.fetch(["zlib1g", "libgmp10"], str(tmp_path), log=lambda m: None)
    assert downloads == [["libgmp10"]]
    assert [(d.name, d.version) for d in debs] == [("zlib1g", "1:1.2.13.dfsg-1"), ("libgmp10", "2:6.2.1+dfsg1-1.1")]
    packages.fetch(["zlib1g", "libgmp10"], str(tmp_path), log=lambda m: None)
    assert downloads == [["libgmp10"]]  # second time: all cached
