"""Real local hypervisor hosts: private libvirtd + QEMU (TCG) inside network namespaces. Needs root,
libvirtd, qemu-system-x86 and dnsmasq; marked `realguest` so the fast suite leaves it out."""
import os
import shutil

import pytest

from labcloud.qemu_host import LocalQemuHost

REQUIRED = ("libvirtd", "qemu-system-x86_64", "dnsmasq", "ip", "nsenter", "unshare", "taskset")


def missing_requirements():
    if os.geteuid() != 0:
        return "needs root (network namespaces, bind mounts)"
    missing = [tool for tool in REQUIRED if shutil.which(tool) is None
               and not os.path.exists(f"/usr/sbin/{tool}")]
    return f"missing: {', '.join(missing)}" if missing else None


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    reason = missing_requirements()
    if reason:  # `make test` installs all of these: a missing one is a set-up defect, not a skip
        pytest.fail(reason)
    return str(tmp_path_factory.mktemp("qemu-hosts"))


@pytest.fixture(scope="module")
def host(data_dir):
    """One host for the module: the first start probes QEMU (~4 s); later hosts in the same data
    dir reuse that probe."""
    host = LocalQemuHost(data_dir, "host1").start()
    yield host
    host.stop()


@pytest.fixture
def conn(host):
    conn = host.open()
    yield conn
    conn.close()
