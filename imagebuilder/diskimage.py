"""disk.qcow2: the image as a self-contained bootable disk, like a cloud image "made elsewhere".

It carries its own bootloader and kernel, so a hypervisor boots it from the disk alone (no
-kernel/-initrd/-append): the guest then has no ip= (it asks DHCP) and no labcloud.metadata= (it
reads the default http://169.254.169.254/latest), exactly what an image from outside would do.

Layout (MBR, 512-byte sectors):
    sector 0       syslinux's mbr.bin (boot code) + the partition table
    partition 1    bootable FAT16, ldlinux.sys/ldlinux.c32, syslinux.cfg, bzImage, initrd.img
    partition 2    the ext4 /data file system, byte for byte the one in root.qcow2

Everything is written into an image file directly (sfdisk, mkfs.fat --offset, syslinux --offset,
mcopy -i file@@offset): no loop device, no mount, no root needed. Host packages: syslinux,
syslinux-common, mtools, dosfstools, fdisk (and qemu-utils, as for root.qcow2).
"""
import hashlib
import math
import os
import shutil
import subprocess

FILE_NAME = "disk.qcow2"
CMDLINE = "console=ttyS0"  # no ip=, no labcloud.metadata=: DHCP and the default metadata URL
MBR_BIN = "/usr/lib/syslinux/mbr/mbr.bin"  # from syslinux-common
HOST_PACKAGES = ("syslinux", "syslinux-common", "mtools", "dosfstools", "fdisk")
SECTOR = 512
MIB = 1024 * 1024
BOOT_START = MIB      # 1 MiB alignment, as partitioning tools do
BOOT_MIN_MIB = 32     # the kernel and initrd take ~12 MB; room for a teacher's larger initrd
BOOT_LABEL = "LABCLOUD"
DATA_PARTITION = 2    # the guest's /init mounts /dev/vda2 when the disk is partitioned
TYPE_FAT16_LBA, TYPE_LINUX = "e", "83"


class DiskImageError(RuntimeError):
    pass


def _missing(what):
    return DiskImageError(f"{what} not found: --disk-image needs the Debian packages {' '.join(HOST_PACKAGES)}")


def _tool(name):
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")  # sbin: not in a user's PATH
    if not path:
        raise _missing(name)
    return path


def tools_fingerprint():
    """sha256 over the host's bootloader files: a new syslinux is a changed input of disk.qcow2.
    Raises DiskImageError (before any work) when a tool is missing."""
    for name in ("sfdisk", "mkfs.fat", "mcopy", "qemu-img"):
        _tool(name)
    digest = hashlib.sha256()
    for path in (MBR_BIN, _tool("syslinux")):
        if not os.path.exists(path):
            raise _missing(path)
        with open(path, "rb") as f:
            digest.update(path.encode() + b"\0" + hashlib.sha256(f.read()).digest())
    return digest.hexdigest()


def syslinux_cfg(cmdline=CMDLINE):
    # SERIAL: the bootloader's own messages go to the serial console too (the only console a
    # cloud guest has). PROMPT 0 with no TIMEOUT boots the default entry at once.
    return ("SERIAL 0 115200\n"
            "PROMPT 0\n"
            "DEFAULT labcloud\n"
            "LABEL labcloud\n"
            "  LINUX /bzImage\n"
            "  INITRD /initrd.img\n"
            f"  APPEND {cmdline}\n")


def _run(cmd, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        output = proc.stderr.strip() or proc.stdout.strip()
        raise DiskImageError(f"{' '.join(cmd)} failed ({proc.returncode}): {output}")
    return proc.stdout


def _copy_into(src, dest, offset, block=MIB):
    """Copy file `src` into `dest` at byte `offset`, seeking over zero blocks so `dest` stays sparse."""
    zero = bytes(block)
    with open(src, "rb") as fin, open(dest, "r+b") as fout:
        fout.seek(offset)
        while data := fin.read(block):
            if data == zero[:len(data)]:
                fout.seek(len(data), os.SEEK_CUR)
            else:
                fout.write(data)


def make(out_path, bzimage, initrd, data_qcow2, work, cmdline=CMDLINE):
    """Write the bootable disk to `out_path` (qcow2). `data_qcow2` is the ext4 template for /data
    (root.qcow2); `work` a scratch directory. Returns a summary for the manifest."""
    os.makedirs(work, exist_ok=True)
    data_raw, raw = os.path.join(work, "data.raw"), os.path.join(work, "disk.raw")
    _run(["qemu-img", "convert", "-O", "raw", data_qcow2, data_raw])
    data_size = os.path.getsize(data_raw)
    payload = os.path.getsize(bzimage) + os.path.getsize(initrd) + 256 * 1024  # + ldlinux.sys, .c32
    boot_size = max(BOOT_MIN_MIB, math.ceil(payload * 1.25 / MIB)) * MIB  # 25 %: FAT overhead, slack
    data_start = BOOT_START + boot_size
    with open(raw, "wb") as f:
        f.truncate(data_start + data_size)

    # Partition table; mbr.bin (440 bytes) is the boot code in front of it and boots the active one.
    _run([_tool("sfdisk"), "-q", raw], input=(
        "label: dos\nunit: sectors\n"
        f"start={BOOT_START // SECTOR}, size={boot_size // SECTOR}, type={TYPE_FAT16_LBA}, bootable\n"
        f"start={data_start // SECTOR}, size={data_size // SECTOR}, type={TYPE_LINUX}\n"))
    with open(MBR_BIN, "rb") as f:
        mbr = f.read()
    with open(raw, "r+b") as f:
        f.write(mbr[:440])

    # FAT16 (-F 16: the type in the table says so); -h: hidden sectors = where the partition starts.
    _run([_tool("mkfs.fat"), "-F", "16", "-n", BOOT_LABEL, "-h", str(BOOT_START // SECTOR),
          "--offset", str(BOOT_START // SECTOR), raw, str(boot_size // 1024)])
    # The installer writes the FAT boot sector, ldlinux.sys and ldlinux.c32 (its own matching copies,
    # through mtools; the offset is in bytes).
    _run([_tool("syslinux"), "--offset", str(BOOT_START), "--install", raw])
    cfg = os.path.join(work, "syslinux.cfg")
    with open(cfg, "w") as f:
        f.write(syslinux_cfg(cmdline))
    # MTOOLS_SKIP_CHECK: the FAT's size is not a whole number of the BIOS geometry's tracks.
    mtools_env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    for name, src in (("syslinux.cfg", cfg), ("bzImage", bzimage), ("initrd.img", initrd)):
        _run([_tool("mcopy"), "-i", f"{raw}@@{BOOT_START}", src, f"::/{name}"], env=mtools_env)

    _copy_into(data_raw, raw, data_start)
    _run(["qemu-img", "convert", "-O", "qcow2", raw, out_path])
    for path in (raw, data_raw):
        os.unlink(path)
    return {
        "disk_image": os.path.basename(out_path),
        "disk_image_format": "qcow2",
        "disk_image_virtual_size": data_start + data_size,
        "disk_image_cmdline": cmdline,
        "disk_image_bootloader": "syslinux",
        "disk_image_data_partition": DATA_PARTITION,
    }
