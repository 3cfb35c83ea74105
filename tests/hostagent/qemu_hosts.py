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


def tiny_guest_spec(image, tmp_path, instance_id, name, mac, ip, hostname, gateway, netmask, **extra):
    """create_domain's request for the tiny image booted directly (its kernel and initramfs) on a
    fresh copy-on-write disk over its root.qcow2 in tmp_path, with a static ip= command line."""
    import os
    import subprocess
    disk = tmp_path / "root.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                    os.path.join(image, "root.qcow2"), str(disk)], check=True)
    return {"instance_id": instance_id, "name": name, "vcpus": 1, "memory_mib": 128, "cpu_weight": 1024,
            "cpu_cap": 0, "disk_path": str(disk), "mac": mac, "ip": ip, "hostname": hostname,
            "kernel": os.path.join(image, "vmlinux"), "initrd": os.path.join(image, "initrd.img"),
            "cmdline": f"console=ttyS0 ip={ip}::{gateway}:{netmask}:{hostname}:eth0:off", **extra}
