"""The kernel-module closure an image needs, from a `busybox depmod` run over the unpacked kernel.

Debian's package ships no modules.dep (its postinst makes one), so busybox's depmod (from the
busybox-static package, runs on the build host) computes it; the closure of the modules /init loads
is copied into the initramfs, and depmod runs again over that subset so `modprobe` in the guest
knows the load order (virtio before virtio_pci, jbd2 before ext4, ...).
"""
import os
import shutil
import subprocess


def busybox_depmod(busybox, base_dir, kernel_version):
    subprocess.run([busybox, "depmod", "-b", base_dir, kernel_version], check=True, capture_output=True)


def module_name(path):
    name = os.path.basename(path)
    for suffix in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if name.endswith(suffix):
            name = name[:-len(suffix)]
            break
    return name.replace("-", "_")


def read_modules_dep(modules_dir):
    """{relative path: [relative paths it depends on]} from modules.dep."""
    deps = {}
    with open(os.path.join(modules_dir, "modules.dep")) as f:
        for line in f:
            if ":" in line:
                path, rest = line.split(":", 1)
                deps[path.strip()] = rest.split()
    return deps


def closure(modules_dir, wanted):
    """Relative paths of the wanted modules and everything they depend on (sorted)."""
    deps = read_modules_dep(modules_dir)
    by_name = {module_name(path): path for path in deps}
    missing = [name for name in wanted if name.replace("-", "_") not in by_name]
    if missing:
        raise KeyError(f"modules not in this kernel: {missing}")
    result, todo = set(), [by_name[name.replace("-", "_")] for name in wanted]
    while todo:
        path = todo.pop()
        if path not in result:
            result.add(path)
            todo.extend(deps.get(path, []))
    return sorted(result)


def install_subset(busybox, kernel_root, kernel_version, wanted, dest_root):
    """Copy the closure of `wanted` from an unpacked kernel into dest_root/lib/modules/<version>/
    and depmod it. Returns the relative module paths copied."""
    src_dir = os.path.join(kernel_root, "lib", "modules", kernel_version)
    if not os.path.exists(os.path.join(src_dir, "modules.dep")):
        busybox_depmod(busybox, kernel_root, kernel_version)
    paths = closure(src_dir, wanted)
    dest_dir = os.path.join(dest_root, "lib", "modules", kernel_version)
    for rel in paths:
        os.makedirs(os.path.dirname(os.path.join(dest_dir, rel)), exist_ok=True)
        shutil.copy2(os.path.join(src_dir, rel), os.path.join(dest_dir, rel))
    for extra in ("modules.builtin", "modules.order"):
        if os.path.exists(os.path.join(src_dir, extra)):
            shutil.copy2(os.path.join(src_dir, extra), os.path.join(dest_dir, extra))
    busybox_depmod(busybox, dest_root, kernel_version)
    return paths
