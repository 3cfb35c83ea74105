"""Private QEMU hosts (labcloud.qemu_host) for real-libvirt test modules."""


def private_qemu_host(tmp_path_factory, host_name):
    """For a fixture to `yield from`: a started private libvirtd host, stopped afterwards."""
    from labcloud.qemu_host import LocalQemuHost
    host = LocalQemuHost(str(tmp_path_factory.mktemp("hosts")), host_name).start()
    try:
        yield host
    finally:
        host.stop()
