"""Assemble the initramfs tree (busybox, dropbear and its libraries, kernel modules, /init, /etc)
and pack it as a gzipped newc cpio.

The guest runs entirely from this initramfs; the qcow2 root disk is mounted on /data for state
that should live on the copy-on-write volume.
"""
import os
import shutil
import subprocess

from imagebuilder import cpio, elfdeps, init_script, modules

LIB_DIRS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu")
LOADER = "lib64/ld-linux-x86-64.so.2"
DROPBEAR_BINARIES = ("usr/sbin/dropbear", "usr/bin/dropbearkey", "usr/bin/dbclient")
# Not needed in a RAM-only guest; dropped from extra packages to keep the initramfs small.
BLOAT_DIRS = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian")

ETC_FILES = {
    # "*" (not empty): dropbear refuses accounts with a blank password; root logs in by key only.
    "etc/passwd": "root:*:0:0:root:/root:/bin/sh\nnobody:*:65534:65534:nobody:/nonexistent:/bin/false\n",
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "etc/shells": "/bin/sh\n/bin/ash\n",
    "etc/hosts": "127.0.0.1 localhost\n",
    "etc/profile": "export PATH=/sbin:/bin:/usr/sbin:/usr/bin\nexport PS1='\\h:\\w\\$ '\n",
}


def _write(root, rel, text, mode=0o644):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def install_busybox(pkg_root, tree):
    """busybox plus a symlink per applet at its usual place (from `busybox --list-full`)."""
    busybox = os.path.join(pkg_root, "bin", "busybox")
    os.makedirs(os.path.join(tree, "bin"), exist_ok=True)
    shutil.copy2(busybox, os.path.join(tree, "bin", "busybox"))
    applets = subprocess.run([busybox, "--list-full"], check=True, capture_output=True, text=True).stdout.split()
    for rel in applets:
        if rel in ("bin/busybox", "linuxrc", "sbin/init"):
            continue  # /init is ours; `linuxrc`/`sbin/init` would only confuse a reader
        link = os.path.join(tree, rel)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if not os.path.lexists(link):
            os.symlink("/bin/busybox", link)
    return busybox


def install_dropbear(pkg_root, tree):
    """dropbear binaries and exactly the shared libraries they need, plus the dynamic loader."""
    binaries = [os.path.join(pkg_root, rel) for rel in DROPBEAR_BINARIES]
    for rel, src in zip(DROPBEAR_BINARIES, binaries):
        os.makedirs(os.path.dirname(os.path.join(tree, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(tree, rel))
    libs = elfdeps.library_closure(binaries, [os.path.join(pkg_root, d) for d in LIB_DIRS])
    for soname, path in libs.items():
        rel = os.path.relpath(path, pkg_root)
        os.makedirs(os.path.dirname(os.path.join(tree, rel)), exist_ok=True)
        shutil.copy(os.path.realpath(path), os.path.join(tree, rel))  # the file, under its soname
    os.makedirs(os.path.join(tree, "lib64"), exist_ok=True)
    if not os.path.lexists(os.path.join(tree, LOADER)):
        os.symlink("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", os.path.join(tree, LOADER))
    return sorted(libs)


def install_config(tree, init_text):
    for rel, text in ETC_FILES.items():
        _write(tree, rel, text)
    _write(tree, "etc/udhcpc.script", init_script.UDHCPC_SCRIPT, 0o755)
    _write(tree, init_script.ACPI_POWER_HANDLER_PATH, init_script.ACPI_POWER_HANDLER, 0o755)
    _write(tree, "init", init_text, 0o755)
    for rel in ("proc", "sys", "dev", "run", "tmp", "data", "var/log", "etc/dropbear", "root/.ssh"):
        os.makedirs(os.path.join(tree, rel), exist_ok=True)
    os.chmod(os.path.join(tree, "tmp"), 0o1777)
    os.chmod(os.path.join(tree, "root"), 0o700)


def install_extra_package(deb_path, tree):
    """A teacher's extra package, unpacked as is (its Depends are not resolved in v1)."""
    subprocess.run(["dpkg-deb", "-x", deb_path, tree], check=True, capture_output=True)
    for rel in BLOAT_DIRS:
        shutil.rmtree(os.path.join(tree, rel), ignore_errors=True)


def install_file(src, dest, tree):
    """Copy a file (or a directory tree) from the build host to `dest` inside the guest."""
    target = os.path.join(tree, dest.lstrip("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.isdir(src):
        shutil.copytree(src, target, symlinks=True, dirs_exist_ok=True)
    else:
        shutil.copy2(src, target)


def assemble(tree, pkg_root, kernel, module_names=init_script.MODULES, init_text=None):
    """Fill `tree` from the unpacked base packages (`pkg_root`) and kernel. Returns a summary."""
    busybox = install_busybox(pkg_root, tree)
    libs = install_dropbear(pkg_root, tree)
    mods = modules.install_subset(busybox, kernel.root, kernel.version, module_names, tree)
    install_config(tree, init_text or init_script.render_init(module_names))
    return {"libraries": libs, "modules": mods}


def pack(tree, path):
    return cpio.write_initramfs(path, tree)
