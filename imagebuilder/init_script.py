"""The guest's /init (PID 1) and the small helper scripts it uses.

/init is a busybox shell script. It must start with `#!/bin/busybox sh`: with `#!/bin/sh` the kernel
panics (the symlink is resolved before the applet name is known). It does in order: mounts, kernel
modules, network (the kernel has no CONFIG_IP_PNP, so `ip=` is parsed here), metadata (hostname,
SSH key, user-data), /data, SSH host key, user-data, dropbear, then waits for signals forever.

The shell functions are kept in separate strings so tests can run them with /bin/sh.
"""

DEFAULT_METADATA_URL = "http://169.254.169.254/latest"
METADATA_IP = "169.254.169.254"
MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "virtio_rng", "virtio_balloon", "button", "evdev",
           "ext4", "crc32c_generic")

# Console markers: stable strings tests and the host agent can look for in the serial log.
MARK_NETWORK_UP = "labcloud: network up"
MARK_SSH_READY = "labcloud: ssh ready"

# `parse_ip VALUE` sets IP_ADDR IP_GW IP_MASK IP_HOST IP_DEV from the kernel's
# ip=<client>:<server>:<gw>:<netmask>:<hostname>:<device>:<autoconf> syntax. Returns 1 when VALUE is
# not a static configuration (empty, "dhcp", "on", ...) so the caller falls back to DHCP.
PARSE_IP_FUNCTION = r'''
parse_ip() {
    case "$1" in *:*) ;; *) return 1 ;; esac
    local IFS=:
    set -f
    set -- $1
    set +f
    IP_ADDR=$1 IP_GW=$3 IP_MASK=${4:-255.255.255.0} IP_HOST=$5 IP_DEV=${6:-eth0}
    [ -n "$IP_ADDR" ]
}
'''

# `cmdline_value KEY` prints the value of KEY=... from $CMDLINE (the last one wins, like the kernel).
CMDLINE_FUNCTION = r'''
cmdline_value() {
    local word found=1
    for word in $CMDLINE; do
        case "$word" in "$1="*) CMDLINE_VALUE=${word#*=}; found=0 ;; esac
    done
    [ $found = 0 ] && echo "$CMDLINE_VALUE"
}
'''

# `fetch PATH DEST` GETs $METADATA/PATH with a few retries. busybox 1.35's `wget -T` segfaults, so
# the timeout comes from `timeout`. A 404 is an answer ("not set"), not a reason to retry.
FETCH_FUNCTION = r'''
fetch() {
    local try=0 err
    while [ $try -lt 5 ]; do
        rm -f "$2.part"
        if err=$(timeout 5 wget -q -O "$2.part" "$METADATA/$1" 2>&1); then
            mv "$2.part" "$2"
            return 0
        fi
        rm -f "$2.part"
        case "$err" in *404*) return 2 ;; esac
        try=$((try + 1))
        sleep 1
    done
    echo "labcloud: metadata $1 unreachable: $err"
    return 1
}
'''

UDHCPC_SCRIPT = r'''#!/bin/sh
# udhcpc event handler: configure the interface from the lease (labcloud image builder).
case "$1" in
    deconfig)
        ifconfig "$interface" 0.0.0.0 up ;;
    bound|renew)
        ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
        if [ -n "$router" ]; then
            while route del default dev "$interface" 2>/dev/null; do :; done
            set -- $router
            route add default gw "$1" dev "$interface"
        fi
        : > /etc/resolv.conf
        for server in $dns; do echo "nameserver $server" >> /etc/resolv.conf; done
        [ -n "$hostname" ] && echo "$hostname" > /run/dhcp-hostname
        echo "$ip" > /run/dhcp-ip ;;
esac
exit 0
'''

# busybox acpid maps the power button (KEY_POWER from the `button` module via evdev) to this path.
ACPI_POWER_HANDLER_PATH = "etc/acpi/PWRF/00000080"
ACPI_POWER_HANDLER = "#!/bin/sh\n# ACPI power button (virsh shutdown / dom.shutdown()): clean poweroff via PID 1.\npoweroff\n"

INIT_MAIN = r'''
log() { echo "labcloud: $*"; }

# PID 1 gets SIGUSR2 from `poweroff`, SIGTERM from `reboot`, SIGUSR1 from `halt`; a shell as PID 1
# ignores them unless trapped. Unmount /data so the copy-on-write disk is clean, then do it for real.
shutdown_now() {
    log "$1"
    kill $(pidof dropbear) $(pidof acpid) 2>/dev/null
    sync
    umount /data 2>/dev/null
    sync
    "$1" -f
}
trap 'shutdown_now poweroff' USR2
trap 'shutdown_now reboot' TERM
trap 'shutdown_now halt' USR1

mkdir -p /proc /sys /dev /run /tmp /data /var/log /root/.ssh /etc/dropbear
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
ln -sf /proc/mounts /etc/mtab
CMDLINE=$(cat /proc/cmdline)
log "init started"

# Debian's kernel has virtio, ext4 and the ACPI button as modules; modprobe resolves the order.
modprobe -a MODULES_HERE || log "some modules failed to load"
ifconfig lo 127.0.0.1 up

acpid -c /etc/acpi -l /var/log/acpid.log

# Network: static from ip= when it is complete, else DHCP.
IP_DEV=eth0
if parse_ip "$(cmdline_value ip)"; then
    ifconfig "$IP_DEV" "$IP_ADDR" netmask "$IP_MASK" up
    [ -n "$IP_GW" ] && route add default gw "$IP_GW" dev "$IP_DEV"
else
    IP_HOST=
    udhcpc -i "$IP_DEV" -n -t 10 -T 1 -s /etc/udhcpc.script -p /run/udhcpc.pid >/dev/null 2>&1
    IP_ADDR=$(cat /run/dhcp-ip 2>/dev/null)
    [ -f /run/dhcp-hostname ] && IP_HOST=$(cat /run/dhcp-hostname)
fi
# The metadata service answers on the guest's own link (the host's bridge), not via the gateway.
ip route add METADATA_IP_HERE/32 dev "$IP_DEV" 2>/dev/null
if [ -n "$IP_ADDR" ]; then echo "MARK_NETWORK_UP_HERE $IP_ADDR"; else log "network down"; fi
[ -n "$IP_HOST" ] && hostname "$IP_HOST"

METADATA=$(cmdline_value labcloud.metadata) || METADATA=DEFAULT_METADATA_HERE
mkdir -p /run/metadata
fetch meta-data/hostname /run/metadata/hostname
METADATA_STATUS=$?
if [ $METADATA_STATUS = 0 ]; then
    name=$(head -n 1 /run/metadata/hostname | tr -cd 'A-Za-z0-9.-')
    [ -n "$name" ] && hostname "$name"
fi
hostname > /etc/hostname
# Unreachable once (status 1, after retries) means unreachable: do not wait again for each path.
if [ $METADATA_STATUS != 1 ] && fetch meta-data/public-keys/0/openssh-key /run/metadata/openssh-key; then
    cat /run/metadata/openssh-key > /root/.ssh/authorized_keys
    log "ssh key installed"
else
    log "no ssh key from metadata: nobody can log in"
fi
chmod 700 /root /root/.ssh
chmod 600 /root/.ssh/authorized_keys 2>/dev/null
[ $METADATA_STATUS != 1 ] && fetch user-data /run/metadata/user-data

# /dev/vda is the copy-on-write root disk. Kernel boot (root.qcow2): a bare ext4 on vda. Disk image
# (disk.qcow2, booted by its own bootloader): an MBR with the boot FAT on vda1 and the same ext4 on
# vda2. The kernel reads the partition table (msdos support is built in, no module) in the same step
# that registers vda, so vda2 is there once vda is. virtio_blk may probe just after modprobe.
for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; sleep 0.1; done
DATA_DEV=/dev/vda
[ -b /dev/vda2 ] && DATA_DEV=/dev/vda2
if [ -b /dev/vda ]; then
    if mount -t ext4 $DATA_DEV /data; then log "data disk mounted on /data from $DATA_DEV"
    else log "data disk mount failed"; fi
fi

# ed25519 only: fast even under TCG; dropbear -R makes other key types on demand.
[ -f /etc/dropbear/dropbear_ed25519_host_key ] ||
    dropbearkey -t ed25519 -f /etc/dropbear/dropbear_ed25519_host_key >/dev/null 2>&1

# user-data runs before SSH opens, so "ssh ready" also means "user-data finished".
if [ -s /run/metadata/user-data ] && [ "$(head -c 2 /run/metadata/user-data)" = "#!" ]; then
    cp /run/metadata/user-data /run/user-data
    chmod 700 /run/user-data
    log "running user-data"
    ( cd /root && HOME=/root /run/user-data ) 2>&1 | tee /var/log/user-data.log
    log "user-data finished"
fi

dropbear -R -E -p 22 2>>/var/log/dropbear.log
echo "MARK_SSH_READY_HERE $IP_ADDR"

while :; do
    sleep 86400 &
    wait $!
done
'''


def render_init(modules=MODULES, default_metadata_url=DEFAULT_METADATA_URL):
    """The complete /init text."""
    main = (INIT_MAIN.replace("MODULES_HERE", " ".join(modules))
            .replace("METADATA_IP_HERE", METADATA_IP)
            .replace("DEFAULT_METADATA_HERE", default_metadata_url)
            .replace("MARK_NETWORK_UP_HERE", MARK_NETWORK_UP)
            .replace("MARK_SSH_READY_HERE", MARK_SSH_READY))
    header = ("#!/bin/busybox sh\n"
              "# labcloud image /init (PID 1), generated by imagebuilder.init_script.\n"
              "export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root\n")
    return header + PARSE_IP_FUNCTION + CMDLINE_FUNCTION + FETCH_FUNCTION + main


def cmdline_template(console="ttyS0"):
    """Kernel command line for hosts that boot the image directly; `{...}` are filled per guest."""
    return f"console={console} ip={{ip}}::{{gateway}}:{{netmask}}:{{hostname}}:eth0:off"
