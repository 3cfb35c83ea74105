"""The /init's shell functions, run with the host's /bin/sh (POSIX, like busybox ash for these)."""
import shutil
import subprocess

import pytest

from imagebuilder import init_script

SH = shutil.which("sh")


def sh(script):
    return subprocess.run([SH, "-c", script], capture_output=True, text=True, timeout=10)


def parse(value):
    proc = sh(init_script.PARSE_IP_FUNCTION + f"""
parse_ip '{value}'; status=$?
echo "$status|$IP_ADDR|$IP_GW|$IP_MASK|$IP_HOST|$IP_DEV"
""")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().split("|")


def test_parse_ip_full_static_configuration():
    assert parse("10.0.2.15::10.0.2.2:255.255.255.0:tinyvm:eth0:off") == \
        ["0", "10.0.2.15", "10.0.2.2", "255.255.255.0", "tinyvm", "eth0"]


def test_parse_ip_defaults_for_missing_fields():
    assert parse("10.99.0.7::::::") == ["0", "10.99.0.7", "", "255.255.255.0", "", "eth0"]
    assert parse("10.99.0.7::10.99.0.1:255.255.252.0") == ["0", "10.99.0.7", "10.99.0.1", "255.255.252.0", "", "eth0"]


@pytest.mark.parametrize("value", ["", "dhcp", "on", "::10.0.0.1:255.0.0.0:h:eth0:off"])
def test_parse_ip_falls_back_to_dhcp(value):
    assert parse(value)[0] == "1"


def test_parse_ip_does_not_glob_or_leak_ifs():
    proc = sh(init_script.PARSE_IP_FUNCTION + """
parse_ip '10.0.0.2::10.0.0.1:255.255.255.0:*:eth0:off'
echo "$IP_HOST"; x='a b'; set -- $x; echo $#
""")
    assert proc.stdout.split() == ["*", "2"]


def cmdline_value(cmdline, key):
    proc = sh(init_script.CMDLINE_FUNCTION + f"CMDLINE='{cmdline}'\ncmdline_value {key}; echo \"status=$?\"")
    return proc.stdout.strip().splitlines()


def test_cmdline_value():
    cmdline = "console=ttyS0 ip=10.0.2.15::10.0.2.2:255.255.255.0:tinyvm:eth0:off labcloud.metadata=http://10.0.2.2:8123/latest"
    assert cmdline_value(cmdline, "labcloud.metadata") == ["http://10.0.2.2:8123/latest", "status=0"]
    assert cmdline_value(cmdline, "ip") == ["10.0.2.15::10.0.2.2:255.255.255.0:tinyvm:eth0:off", "status=0"]
    assert cmdline_value(cmdline, "missing") == ["status=1"]
    assert cmdline_value("ip=dhcp ip=1.2.3.4:::::", "ip")[0] == "1.2.3.4:::::"  # last wins


def test_init_is_a_busybox_script_with_the_needed_steps():
    text = init_script.render_init()
    assert text.startswith("#!/bin/busybox sh\n")
    assert "modprobe -a " + " ".join(init_script.MODULES) in text
    assert "wget -T" not in text and "timeout 5 wget" in text
    assert "http://169.254.169.254/latest" in text and "labcloud.metadata" in text
    assert "trap 'shutdown_now poweroff' USR2" in text
    assert "dropbear -R -E -p 22" in text
    assert "/root/.ssh/authorized_keys" in text and "chmod 600" in text
    assert init_script.MARK_SSH_READY in text and init_script.MARK_NETWORK_UP in text


@pytest.mark.parametrize("script", [init_script.render_init(), init_script.UDHCPC_SCRIPT,
                                    init_script.ACPI_POWER_HANDLER])
def test_scripts_parse(script):
    proc = subprocess.run([SH, "-n"], input=script, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_cmdline_template():
    template = init_script.cmdline_template()
    assert template.format(ip="10.99.0.5", gateway="10.99.0.1", netmask="255.255.252.0", hostname="vm1") == \
        "console=ttyS0 ip=10.99.0.5::10.99.0.1:255.255.252.0:vm1:eth0:off"


def test_data_disk_is_the_second_partition_of_a_partitioned_disk():
    """disk.qcow2 (own bootloader) has /data on vda2; root.qcow2 (kernel boot) is a bare ext4 on vda."""
    text = init_script.render_init()
    assert "DATA_DEV=/dev/vda\n[ -b /dev/vda2 ] && DATA_DEV=/dev/vda2\n" in text
    assert "mount -t ext4 $DATA_DEV /data" in text
