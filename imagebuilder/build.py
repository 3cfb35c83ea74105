"""Build a bootable image directory from Debian packages.

Output, under `<data_dir>/images/`:
    <name>/vmlinux       uncompressed ELF kernel (PVH direct boot, the fast path under TCG)
    <name>/bzImage       the same kernel as Debian ships it
    <name>/initrd.img    gzipped cpio: busybox, dropbear, modules, /init
    <name>/root.qcow2    64 MiB ext4 template, the guest's /data (copy-on-write per VM)
    <name>/disk.qcow2    with disk_image=True (--disk-image): the same guest as one bootable disk
                         (MBR, syslinux, bzImage + initrd, /data on partition 2), see diskimage.py
    <name>/manifest.json what was built from what, with sha256 of every file
    <name>.qcow2         hard link (or copy) of root.qcow2, where the storage service looks

A build is skipped when the manifest's input fingerprint (package versions, extra files, the
builder's own source, whether there is a disk image) matches; a changed build replaces the
directory atomically. A disk image, once built, is kept by later builds without the flag.
"""
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time

from imagebuilder import diskimage, init_script, initramfs, kernel, packages, rootdisk

MANIFEST_VERSION = 1
IMAGE_FILES = {"kernel": "vmlinux", "kernel_bzimage": "bzImage", "initrd": "initrd.img", "root_disk": "root.qcow2"}
DATA_PREFIX = "/data/"  # extra files under this path go onto the root disk, the rest into the initramfs


def default_data_dir():
    return os.environ.get("LABCLOUD_DATA_DIR") or "var"


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tree_digest(path):
    """sha256 over a file or a directory's files (names and contents), for the input fingerprint."""
    if not os.path.isdir(path):
        return sha256_file(path)
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for fname in sorted(filenames):
            full = os.path.join(dirpath, fname)
            digest.update(os.path.relpath(full, path).encode() + b"\0")
            digest.update((os.readlink(full) if os.path.islink(full) else sha256_file(full)).encode() + b"\0")
    return digest.hexdigest()


# The modules whose code shapes the image; a change to any of them (the /init text, the cpio
# writer...) means a rebuild. The CLI and bareboot are not inputs.
BUILD_INPUT_MODULES = ("build.py", "cpio.py", "diskimage.py", "elfdeps.py", "init_script.py", "initramfs.py",
                       "kernel.py", "modules.py", "packages.py", "rootdisk.py")


def _builder_digest():
    here = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for fname in BUILD_INPUT_MODULES:
        with open(os.path.join(here, fname), "rb") as f:
            digest.update(fname.encode() + b"\0" + f.read())
    return digest.hexdigest()


def parse_file_spec(spec):
    """'SRC:DEST' -> (SRC, DEST); DEST must be absolute inside the guest."""
    src, sep, dest = spec.rpartition(":")
    if not sep or not src or not dest.startswith("/"):
        raise ValueError(f"--file wants SRC:DEST with an absolute DEST, got {spec!r}")
    return src, dest


def _inputs_fingerprint(debs, extra_files, root_size_mib, disk_image=False):
    payload = {
        "manifest_version": MANIFEST_VERSION,
        "builder": _builder_digest(),
        "packages": [[d.name, d.version] for d in debs],
        "files": [[src, dest, _tree_digest(src)] for src, dest in extra_files],
        "root_size_mib": root_size_mib,
    }
    if disk_image:  # the host's syslinux goes into disk.qcow2: a new one is a changed input
        payload["disk_image"] = diskimage.tools_fingerprint()
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest(), payload["files"]


def _read_manifest(image_dir):
    try:
        with open(os.path.join(image_dir, "manifest.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _up_to_date(image_dir, fingerprint):
    manifest = _read_manifest(image_dir)
    if not manifest or manifest.get("inputs_sha256") != fingerprint:
        return None
    for info in manifest.get("files", {}).values():
        path = os.path.join(image_dir, info["path"])
        if not os.path.exists(path) or os.path.getsize(path) != info["size"]:
            return None
    return manifest


def _publish_disk(image_dir, disk_link):
    """<images>/<name>.qcow2 -> the new root.qcow2, replaced atomically (never written in place)."""
    tmp = disk_link + ".tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    try:
        os.link(os.path.join(image_dir, IMAGE_FILES["root_disk"]), tmp)
    except OSError:
        shutil.copy2(os.path.join(image_dir, IMAGE_FILES["root_disk"]), tmp)
    os.replace(tmp, disk_link)


def _swap_in(new_dir, image_dir):
    old = None
    if os.path.exists(image_dir):
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(image_dir)}.old-", dir=os.path.dirname(image_dir))
        os.rmdir(old)
        os.rename(image_dir, old)
    os.rename(new_dir, image_dir)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def build(name, data_dir=None, extra_packages=(), extra_files=(), cache_dir=None,
          root_size_mib=rootdisk.DEFAULT_SIZE_MIB, force=False, log=print, disk_image=False):
    """Build (or reuse) image `name`; returns its manifest (dict, with "rebuilt": bool).

    extra_packages: Debian package names unpacked into the guest (Depends are not resolved).
    extra_files: (src, dest) pairs or "SRC:DEST" strings; dest under /data/ goes onto the disk.
    cache_dir: where .deb files are kept (default <data_dir>/cache/debs).
    disk_image: also write disk.qcow2, a self-booting disk (kept by later builds without it).
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"bad image name {name!r}")
    started = time.monotonic()
    data_dir = os.path.abspath(data_dir or default_data_dir())
    cache_dir = os.path.abspath(cache_dir or os.path.join(data_dir, "cache", "debs"))
    images_dir = os.path.join(data_dir, "images")
    image_dir = os.path.join(images_dir, name)
    disk_link = os.path.join(images_dir, f"{name}.qcow2")
    files = [parse_file_spec(f) if isinstance(f, str) else tuple(f) for f in extra_files]
    files = [(os.path.abspath(src), dest) for src, dest in files]

    kernel_pkg = packages.resolve_kernel_package()
    base_names = [kernel_pkg, *packages.BASE_PACKAGES]
    extra_names = [p for p in dict.fromkeys(extra_packages) if p not in base_names]
    debs = packages.fetch(base_names + extra_names, cache_dir, log=log)
    # Sticky: `labcloud run` builds `tiny` without the flag and must not take a teacher's disk away.
    disk_image = disk_image or "disk_image" in (_read_manifest(image_dir) or {}).get("files", {})
    fingerprint, file_digests = _inputs_fingerprint(debs, files, root_size_mib, disk_image)

    manifest = None if force else _up_to_date(image_dir, fingerprint)
    if manifest:
        if not os.path.exists(disk_link):
            _publish_disk(image_dir, disk_link)
        log(f"imagebuilder: {name} is up to date ({time.monotonic() - started:.1f} s)")
        return dict(manifest, rebuilt=False)

    os.makedirs(images_dir, exist_ok=True)
    os.makedirs(os.path.join(data_dir, "cache"), exist_ok=True)
    work = tempfile.mkdtemp(prefix=f"build-{name}-", dir=os.path.join(data_dir, "cache"))
    new_dir = tempfile.mkdtemp(prefix=f".{name}.new-", dir=images_dir)
    try:
        manifest = _build_into(new_dir, work, name, debs, extra_names, files, file_digests,
                               root_size_mib, log)
        if disk_image:
            _add_disk_image(new_dir, os.path.join(work, "diskimage"), manifest, log)
        manifest["inputs_sha256"] = fingerprint
        manifest["build_seconds"] = round(time.monotonic() - started, 2)
        with open(os.path.join(new_dir, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
        os.chmod(new_dir, 0o755)
        _swap_in(new_dir, image_dir)
        _publish_disk(image_dir, disk_link)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(new_dir, ignore_errors=True)
    log(f"imagebuilder: built {name} in {manifest['build_seconds']} s -> {image_dir}")
    return dict(manifest, rebuilt=True)


def _add_disk_image(out_dir, work, manifest, log):
    """disk.qcow2 from the files already built in out_dir; recorded in `manifest` like the others."""
    path = os.path.join(out_dir, diskimage.FILE_NAME)
    started = time.monotonic()
    manifest.update(diskimage.make(path, os.path.join(out_dir, IMAGE_FILES["kernel_bzimage"]),
                                   os.path.join(out_dir, IMAGE_FILES["initrd"]),
                                   os.path.join(out_dir, IMAGE_FILES["root_disk"]), work))
    info = {"path": diskimage.FILE_NAME, "size": os.path.getsize(path), "sha256": sha256_file(path)}
    manifest["files"]["disk_image"] = info
    manifest["size"] += info["size"]
    log(f"imagebuilder: disk image {diskimage.FILE_NAME} in {time.monotonic() - started:.1f} s")


def _build_into(out_dir, work, name, debs, extra_names, files, file_digests, root_size_mib, log):
    kernel_deb, base_debs = debs[0], debs[1:len(debs) - len(extra_names)]
    extra_debs = debs[len(debs) - len(extra_names):] if extra_names else []

    # Kernel: unpack, ELF for PVH boot, keep the bzImage.
    kern = kernel.unpack_kernel(kernel_deb.path, os.path.join(work, "kernel"))
    shutil.copy2(kern.bzimage, os.path.join(out_dir, IMAGE_FILES["kernel_bzimage"]))
    kernel.write_vmlinux(kern.bzimage, os.path.join(out_dir, IMAGE_FILES["kernel"]))

    # Base userland packages are unpacked side by side; only what the guest needs is copied out.
    pkg_root = os.path.join(work, "packages")
    for deb in base_debs:
        kernel.unpack_deb(deb.path, pkg_root)
    tree = os.path.join(work, "initramfs")
    summary = initramfs.assemble(tree, pkg_root, kern)
    for deb in extra_debs:
        initramfs.install_extra_package(deb.path, tree)

    disk_staging = os.path.join(work, "disk")
    os.makedirs(disk_staging)
    for src, dest in files:
        if dest.startswith(DATA_PREFIX):
            initramfs.install_file(src, dest[len(DATA_PREFIX):], disk_staging)
        else:
            initramfs.install_file(src, dest, tree)
    initramfs.pack(tree, os.path.join(out_dir, IMAGE_FILES["initrd"]))
    rootdisk.make_template(disk_staging, os.path.join(work, "root.raw"),
                           os.path.join(out_dir, IMAGE_FILES["root_disk"]), root_size_mib)

    file_info = {}
    for role, fname in IMAGE_FILES.items():
        path = os.path.join(out_dir, fname)
        file_info[role] = {"path": fname, "size": os.path.getsize(path), "sha256": sha256_file(path)}
    return {
        "name": name,
        "manifest_version": MANIFEST_VERSION,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **{role: fname for role, fname in IMAGE_FILES.items()},
        "kernel_version": kern.version,
        "root_disk_format": "qcow2",
        "root_disk_virtual_size": root_size_mib * 1024 * 1024,
        "cmdline_template": init_script.cmdline_template(),
        "metadata_url": init_script.DEFAULT_METADATA_URL,
        "packages": [{"name": d.name, "version": d.version, "sha256": sha256_file(d.path),
                      "extra": d.name in extra_names} for d in debs],
        "extra_files": [{"src": src, "dest": dest, "sha256": digest} for src, dest, digest in file_digests],
        "modules": summary["modules"],
        "libraries": summary["libraries"],
        "files": file_info,
        "size": sum(info["size"] for info in file_info.values()),
    }
