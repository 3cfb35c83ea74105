"""`labcloud image ...`: build course images.

`main(argv)` takes the arguments after `labcloud image`, e.g. ["build", "tiny", "--package", "htop"];
labcloud/cli.py forwards to it. Also runnable as `python -m imagebuilder build tiny`.
"""
import argparse
import json
import sys

DESCRIPTION = "Build a bootable image (Debian kernel, busybox, dropbear) from Debian packages only."
PACKAGE_HELP = ("extra Debian package to unpack into the image (repeatable). Its Depends are NOT "
                "resolved automatically in v1: list every package it needs, e.g. --package htop "
                "--package libncursesw6")
FILE_HELP = ("copy SRC (a file or directory on this machine) to DEST in the guest (repeatable). "
             "DEST under /data/ goes onto the root disk (persistent per VM), anything else into the "
             "initramfs (RAM)")
DISK_IMAGE_HELP = ("also write NAME/disk.qcow2: the same guest as one self-booting disk (MBR, syslinux, "
                   "kernel and initrd on a FAT partition, /data on partition 2) that gets its address by "
                   "DHCP and its metadata from http://169.254.169.254, like a cloud image made elsewhere. "
                   "Later builds of NAME keep it. Needs the Debian packages syslinux, syslinux-common, "
                   "mtools, dosfstools and fdisk")


def make_parser(prog="labcloud image"):
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build or refresh an image", description=DESCRIPTION + (
        " Writes <data-dir>/images/NAME/{vmlinux,bzImage,initrd.img,root.qcow2,manifest.json} and"
        " <data-dir>/images/NAME.qcow2. Packages are cached in <data-dir>/cache/debs; an image whose"
        " inputs did not change is not rebuilt."))
    build.add_argument("name", help="image name, e.g. tiny")
    build.add_argument("--data-dir", help="labcloud data directory (default: $LABCLOUD_DATA_DIR or ./var)")
    build.add_argument("--package", action="append", default=[], metavar="PKG", help=PACKAGE_HELP)
    build.add_argument("--file", action="append", default=[], metavar="SRC:DEST", help=FILE_HELP)
    build.add_argument("--cache-dir", help="where .deb files are cached (default: <data-dir>/cache/debs)")
    build.add_argument("--disk-image", action="store_true", help=DISK_IMAGE_HELP)
    build.add_argument("--force", action="store_true", help="rebuild even when nothing changed")
    build.add_argument("--json", action="store_true", help="print the manifest as JSON")
    return parser


def main(argv=None):
    args = make_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from imagebuilder.build import build, parse_file_spec
    from imagebuilder.diskimage import DiskImageError
    from imagebuilder.kernel import KernelError
    from imagebuilder.packages import PackageError
    try:
        files = [parse_file_spec(spec) for spec in args.file]
        manifest = build(args.name, args.data_dir, extra_packages=args.package, extra_files=files,
                         cache_dir=args.cache_dir, force=args.force, disk_image=args.disk_image,
                         log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except (ValueError, OSError, PackageError, KernelError, DiskImageError) as exc:
        print(f"labcloud image: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(manifest, indent=2, sort_keys=True))
    else:
        state = "built" if manifest["rebuilt"] else "up to date"
        disk = f", bootable disk {manifest['disk_image']}" if manifest.get("disk_image") else ""
        print(f"{args.name}: {state}, kernel {manifest['kernel_version']}, {manifest['size'] / 1e6:.1f} MB{disk}")
    return 0
