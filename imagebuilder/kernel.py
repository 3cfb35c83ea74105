"""Unpack the Debian kernel package; cut the uncompressed ELF vmlinux out of its bzImage.

Debian's kernel has CONFIG_PVH=y, so QEMU can boot the ELF vmlinux directly (PVH entry point) and
skip the in-guest decompression, which costs ~3 s under TCG. The bzImage is kept for hypervisors
or setups that want a classic boot.
"""
import dataclasses
import glob
import lzma
import os
import subprocess
import zlib

XZ_MAGIC = b"\xfd7zXZ\x00"
GZIP_MAGIC = b"\x1f\x8b\x08"
ELF_MAGIC = b"\x7fELF"


class KernelError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class UnpackedKernel:
    version: str          # e.g. 6.1.0-56-amd64 (the modules directory name)
    bzimage: str          # path of boot/vmlinuz-<version>
    modules_dir: str      # path of lib/modules/<version>
    root: str             # where the package was unpacked


def unpack_deb(deb_path, dest):
    os.makedirs(dest, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", deb_path, dest], check=True, capture_output=True)


def unpack_kernel(deb_path, dest):
    unpack_deb(deb_path, dest)
    images = glob.glob(os.path.join(dest, "boot", "vmlinuz-*"))
    if len(images) != 1:
        raise KernelError(f"expected one boot/vmlinuz-* in {deb_path}, found {images}")
    version = os.path.basename(images[0])[len("vmlinuz-"):]
    modules_dir = os.path.join(dest, "lib", "modules", version)
    if not os.path.isdir(modules_dir):
        raise KernelError(f"{deb_path} has no lib/modules/{version}")
    return UnpackedKernel(version, images[0], modules_dir, dest)


def _decompress_at(data, offset):
    """Decompress one stream starting at `offset`; trailing bytes after the stream are ignored."""
    if data.startswith(XZ_MAGIC, offset):
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[offset:])
    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[offset:])


def extract_vmlinux(bzimage_bytes):
    """The ELF image inside a bzImage (the payload is xz in Debian; gzip is tried as well).

    The payload offset is not parsed from the setup header: scanning for the compressor's magic
    and checking that the result is an ELF file is simpler and survives header changes.
    """
    for magic in (XZ_MAGIC, GZIP_MAGIC):
        offset = bzimage_bytes.find(magic)
        while offset != -1:
            try:
                payload = _decompress_at(bzimage_bytes, offset)
            except (lzma.LZMAError, zlib.error, EOFError):
                payload = b""
            if payload.startswith(ELF_MAGIC):
                return payload
            offset = bzimage_bytes.find(magic, offset + 1)
    raise KernelError("no compressed ELF kernel found in the bzImage")


def write_vmlinux(bzimage_path, dest_path):
    with open(bzimage_path, "rb") as f:
        elf = extract_vmlinux(f.read())
    with open(dest_path, "wb") as f:
        f.write(elf)
    return dest_path
