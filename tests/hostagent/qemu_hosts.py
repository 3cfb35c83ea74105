"""Private QEMU hosts (labcloud.qemu_host) for real-libvirt test modules."""


def private_qemu_host(tmp_path_factory, host_name):
    """For a fixture to `yield from`: a started private libvirtd host, stopped afterwards."""
    from labcloud.qemu_host import LocalQemuHost
    host = LocalQemuHost(str(tmp_path_factory.mktemp("hosts")), host_name).start()
    try:
        yield host
    finally:
        host.stop()


def guest_key(tmp_path, metadata):
    """A fresh ed25519 key (paramiko) whose public line the metadata stand-in `metadata` (a class
    with a `public_key` attribute) hands to guests."""
    import subprocess

    import paramiko
    path = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    private = paramiko.Ed25519Key.from_private_key_file(str(path))
    metadata.public_key = f"{private.get_name()} {private.get_base64()}"
    return private


def agent_config(service_config, qemu_host, tmp_path, pool, ssh_ports, heartbeat_s):
    """A host agent's config on the private host `qemu_host`: its pool and console under tmp_path."""
    return service_config(LIBVIRT_URI=qemu_host.uri, HOST_NETNS=qemu_host.netns, HOST_NETWORK="labcloud",
                          DOMAIN_TYPE="qemu", POOL_NAME=pool, POOL_PATH=str(tmp_path / "pool"),
                          CONSOLE_DIR=str(tmp_path / "console"), SSH_PORT_RANGE=ssh_ports,
                          HEARTBEAT_INTERVAL=heartbeat_s, STATS_INTERVAL=60)
