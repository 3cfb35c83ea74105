"""Fetch the Debian packages an image is made of into a local cache with `apt-get download`.

Only the apt mirror is reachable from the build machines, so packages come from apt, never from a
distro image. The cache key is the package's candidate version: a second build finds the same
`.deb` file in the cache and downloads nothing.
"""
import dataclasses
import glob
import os
import re
import subprocess

# The kernel is resolved at build time (its ABI number changes with Debian point releases).
KERNEL_METAPACKAGE = "linux-image-amd64"
# busybox-static gives a shell and every tool /init needs; dropbear-bin the SSH server. dropbear's
# libraries are listed explicitly because Depends are not resolved (libgmp10 is needed at run
# time although it is not a direct dependency of dropbear-bin).
BASE_PACKAGES = ("busybox-static", "dropbear-bin", "libtomcrypt1", "libtommath1", "libgmp10",
                 "libc6", "libcrypt1", "zlib1g")


class PackageError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class DebPackage:
    name: str
    version: str
    path: str  # the .deb in the cache


def _run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def resolve_kernel_package():
    """The versioned kernel package (linux-image-6.1.0-N-amd64) the metapackage points at."""
    out = _run(["apt-cache", "depends", KERNEL_METAPACKAGE]).stdout
    match = re.search(r"Depends:\s*(linux-image-[0-9][^\s]*-amd64)\b", out)
    if not match:
        apt_get_update()
        out = _run(["apt-cache", "depends", KERNEL_METAPACKAGE]).stdout
        match = re.search(r"Depends:\s*(linux-image-[0-9][^\s]*-amd64)\b", out)
    if not match:
        raise PackageError(f"cannot resolve the kernel package from {KERNEL_METAPACKAGE}: {out!r}")
    return match.group(1)


def candidate_versions(names):
    """{name: version apt would download} in one `apt-cache policy` call; None when unknown."""
    out = _run(["apt-cache", "policy", *names]).stdout
    versions, current = {}, None
    for line in out.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            current = line.strip()[:-1].split(":")[0]  # "pkg:" (or "pkg:amd64:")
        elif current and line.strip().startswith("Candidate:"):
            value = line.split(":", 1)[1].strip()
            versions[current] = None if value == "(none)" else value
    return {name: versions.get(name) for name in names}


def cached_deb(cache_dir, name, version):
    """The cached .deb for exactly this version, or None. apt-get download escapes ':' (epoch)."""
    escaped = version.replace(":", "%3a")
    hits = sorted(glob.glob(os.path.join(glob.escape(cache_dir), f"{glob.escape(name)}_{glob.escape(escaped)}_*.deb")))
    return hits[0] if hits else None


def apt_get_update():
    proc = _run(["apt-get", "update", "-q"])
    if proc.returncode != 0:
        raise PackageError(f"apt-get update failed: {proc.stderr.strip()}")


def _download(cache_dir, names):
    return _run(["apt-get", "download", "-q", *names], cwd=cache_dir)


def fetch(names, cache_dir, log=print):
    """Make sure every package in `names` is in `cache_dir`; returns [DebPackage] in order.

    Downloads only what the cache lacks. `apt-get update` runs only when apt does not know a
    package (stale or missing lists), never on every build.
    """
    os.makedirs(cache_dir, exist_ok=True)
    names = list(dict.fromkeys(names))
    versions = candidate_versions(names)
    missing = [n for n in names if versions[n] is None or not cached_deb(cache_dir, n, versions[n])]
    if missing:
        log(f"imagebuilder: downloading {len(missing)} package(s): {' '.join(missing)}")
        proc = _download(cache_dir, missing)
        if proc.returncode != 0 and "Unable to locate" in proc.stderr:
            apt_get_update()
            versions = candidate_versions(names)
            proc = _download(cache_dir, missing)
        if proc.returncode != 0:
            raise PackageError(f"apt-get download {' '.join(missing)} failed: {proc.stderr.strip()}")
    result = []
    for name in names:
        version = versions[name]
        path = cached_deb(cache_dir, name, version) if version else None
        if not path:
            raise PackageError(f"package {name} ({version}) is not in {cache_dir} after download")
        result.append(DebPackage(name, version, path))
    return result
