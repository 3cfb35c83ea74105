"""Per-guest bandwidth limits with plain `tc`, inside the host's network namespace.

libvirt's own `<bandwidth>` needs act_police, sch_sfq and the fw classifier, which this kernel
lacks (see HYPERVISOR.md, "Live resource controls"). What works:

- into the guest = egress of its tap device: a `tbf` root qdisc on the tap;
- out of the guest = ingress of its tap: an `ingress` qdisc with a u32 match-all filter that
  redirects every packet (mirred) to an `ifb` device of the instance's own, with a `tbf` root there.

Rates are KiB/s (1 KiB = 1024 bytes); 0 means no limit in that direction. Plain functions, no
nameko or eventlet: they run `tc`/`ip` as subprocesses (through nsenter when a namespace is given,
in the caller's own namespace when it is None) and are safe to call from a native thread.
"""
import json
import subprocess

from common import netns
from common.errors import HostOperationFailed

IFB_PREFIX = "lcb"
IFB_HEX_CHARS = 12  # IFNAMSIZ: 3 + 12 = 15 characters, the most a device name may have
LATENCY = "100ms"  # tbf queue: the most a packet waits before it is dropped instead
INGRESS_HANDLE = "ffff:"

# Burst (tbf's bucket size, bytes) = max(MIN_BURST, rate * BURST_SECONDS), i.e. 16 KiB up to
# 800 KiB/s, then 20 ms of traffic (2 MiB at 100 MiB/s):
# - at least rate/HZ: the bucket must hold what the line may send while the qdisc waits to be run
#   again, or tokens overflow and the rate comes out low. This kernel has HZ=250 (4 ms); measured
#   at 100 MiB/s over a veth pair: 1 ms of burst gave 89-92% of the target, 4 ms 94%, 10 ms and
#   20 ms 95.7%. 20 ms (5 ticks) leaves room for softirq delays on a busy host.
# - at least a few MTUs (16 KiB: ten 1514-byte frames, or one 9000-byte jumbo frame), but NOT
#   much more at low rates: tbf's queue is only rate*latency + burst bytes, and a burst of 64 KiB
#   or more lets whole 64 KiB GSO packets in, so a 64 KiB/s queue holds one or two packets, TCP
#   loses whole GSO packets at once, waits for retransmit timeouts and got 58-87% (and 143% after
#   a long stall refilled a 128 KiB bucket). Below 64 KiB tbf splits GSO packets into MTU-sized
#   segments and TCP's sawtooth stays small: 64 KiB/s measured 94-115%.
# TCP goodput measured (veth pair, 2 s windows): 64 KiB/s 94-115%, 128 KiB/s-2 MiB/s 96-104%,
# 10 and 100 MiB/s 95.7% (there tbf counts the 1514-byte Ethernet frame, TCP carries 1448 bytes
# of payload in it).
MIN_BURST = 16 * 1024
BURST_SECONDS = 0.02


def ifb_name(instance_id):
    """The instance's ifb device: "lcb" + the first 12 hex digits of its UUID (15 characters)."""
    digits = str(instance_id).replace("-", "").lower()
    if len(digits) < IFB_HEX_CHARS or any(c not in "0123456789abcdef" for c in digits):
        raise ValueError(f"not an instance UUID: {instance_id!r}")
    return IFB_PREFIX + digits[:IFB_HEX_CHARS]


def instance_hex_of(name):
    """The 12 hex digits an instance ifb carries (match with `uuid.replace("-", "")
    .startswith(...)` or `ifb_name(uuid) == name`); None when `name` is not an instance ifb."""
    if not is_instance_ifb(name):
        return None
    return name[len(IFB_PREFIX):]


def is_instance_ifb(name):
    hex_part = name[len(IFB_PREFIX):]
    return (name.startswith(IFB_PREFIX) and len(hex_part) == IFB_HEX_CHARS
            and all(c in "0123456789abcdef" for c in hex_part))


def rate_bits(kib):
    """tc's rate argument for `kib` KiB/s, in plain bits (tc's "kbit" is 1000 bits, "kibit" 1024:
    plain bits leave no room for confusion)."""
    return f"{int(kib) * 1024 * 8}bit"


def burst_bytes(kib):
    return max(MIN_BURST, int(int(kib) * 1024 * BURST_SECONDS))


# --- running tc and ip ---------------------------------------------------------------------------

def _run(namespace, argv, ok_errors=()):
    """Run argv in the namespace; raise HostOperationFailed with its stderr on failure unless the
    stderr contains one of `ok_errors` (then return None)."""
    try:
        if namespace:
            done = netns.run(namespace, argv, check=False)
        else:
            done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise HostOperationFailed(f"{' '.join(argv)} (netns {namespace}): {exc}") from None
    if done.returncode != 0:
        err = (done.stderr or done.stdout).strip()
        if any(text in err for text in ok_errors):
            return None
        raise HostOperationFailed(f"{' '.join(argv)} (netns {namespace}) failed: {err}")
    return done.stdout


def _json(namespace, argv):
    out = _run(namespace, argv)
    return json.loads(out) if out and out.strip() else []


NOT_FOUND = ("Cannot find device", "No such device", "does not exist")
# What `tc qdisc del` says when the qdisc is not there (root: "handle of zero"; ingress: "Invalid
# handle" once one existed on the device, "Cannot find specified qdisc" on a device that never had one).
NO_QDISC = ("handle of zero", "Invalid handle", "Cannot find specified qdisc")


def _link_exists(namespace, dev):
    return bool(_run(namespace, ["ip", "-j", "link", "show", "dev", dev], ok_errors=NOT_FOUND))


def _qdiscs(namespace, dev):
    return _json(namespace, ["tc", "-j", "qdisc", "show", "dev", dev])


def _root_tbf(qdiscs):
    for qdisc in qdiscs:
        if qdisc.get("root") and qdisc.get("kind") == "tbf":
            return qdisc
    return None


def _ingress(qdiscs):
    for qdisc in qdiscs:
        if qdisc.get("kind") == "ingress":
            return qdisc
    return None


def _redirects_to(namespace, tap, ifb):
    """Whether the tap's ingress has a filter redirecting to `ifb`."""
    filters = _json(namespace, ["tc", "-j", "filter", "show", "dev", tap, "parent", INGRESS_HANDLE])
    for entry in filters:
        for action in (entry.get("options") or {}).get("actions") or []:
            if action.get("kind") == "mirred" and action.get("to_dev") == ifb:
                return True
    return False


def _tbf_matches(qdisc, kib):
    """Whether an existing tbf already has the rate and burst `apply` would give it (tc reports
    the burst after a round trip through kernel ticks, so allow a little rounding)."""
    if qdisc is None:
        return False
    options = qdisc.get("options") or {}
    burst = options.get("burst")
    if options.get("rate") != int(kib) * 1024 or not isinstance(burst, (int, float)):
        return False
    return abs(burst - burst_bytes(kib)) <= max(64, burst_bytes(kib) * 0.02)


def _set_tbf(namespace, dev, kib):
    _run(namespace, ["tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate_bits(kib),
                     "burst", str(burst_bytes(kib)), "latency", LATENCY])


def _del_root(namespace, dev):
    _run(namespace, ["tc", "qdisc", "del", "dev", dev, "root"],
         ok_errors=NOT_FOUND + NO_QDISC)


def _del_ingress(namespace, dev):
    _run(namespace, ["tc", "qdisc", "del", "dev", dev, "ingress"],
         ok_errors=NOT_FOUND + NO_QDISC)


def _del_link(namespace, dev):
    _run(namespace, ["ip", "link", "del", "dev", dev], ok_errors=NOT_FOUND)


# --- public API ----------------------------------------------------------------------------------

def apply(namespace, tap, instance_id, inbound_kib, outbound_kib):
    """Make the tap's limits exactly these: `inbound_kib` into the guest, `outbound_kib` out of it
    (KiB/s, 0 = unlimited). Idempotent: only what differs from the wanted state is touched, so a
    repeat changes nothing; new values are applied live (tc replace keeps the qdisc)."""
    inbound_kib, outbound_kib = int(inbound_kib), int(outbound_kib)
    if inbound_kib < 0 or outbound_kib < 0:
        raise ValueError(f"bandwidth limits must be >= 0 KiB/s, not {inbound_kib}/{outbound_kib}")
    ifb = ifb_name(instance_id)
    tap_qdiscs = _qdiscs(namespace, tap)  # fails (HostOperationFailed) on a missing tap first

    # Into the guest: the tap's root.
    current = _root_tbf(tap_qdiscs)
    if inbound_kib:
        if not _tbf_matches(current, inbound_kib):
            _set_tbf(namespace, tap, inbound_kib)
    elif current is not None:
        _del_root(namespace, tap)

    # Out of the guest: tap ingress -> ifb -> tbf.
    if outbound_kib:
        links = {link["ifname"]: link for link in _ifb_links(namespace)}
        if ifb not in links:
            _run(namespace, ["ip", "link", "add", ifb, "type", "ifb"], ok_errors=("File exists",))
            links[ifb] = {"flags": []}
        if "UP" not in links[ifb].get("flags", []):
            _run(namespace, ["ip", "link", "set", "dev", ifb, "up"])
        if not _tbf_matches(_root_tbf(_qdiscs(namespace, ifb)), outbound_kib):
            _set_tbf(namespace, ifb, outbound_kib)
        if not (_ingress(tap_qdiscs) and _redirects_to(namespace, tap, ifb)):
            if _ingress(tap_qdiscs):
                _del_ingress(namespace, tap)  # an ingress without our redirect: start over
            _run(namespace, ["tc", "qdisc", "add", "dev", tap, "handle", INGRESS_HANDLE, "ingress"])
            _run(namespace, ["tc", "filter", "add", "dev", tap, "parent", INGRESS_HANDLE,
                             "protocol", "all", "u32", "match", "u32", "0", "0",
                             "action", "mirred", "egress", "redirect", "dev", ifb])
    else:
        if _ingress(tap_qdiscs):
            _del_ingress(namespace, tap)  # stop redirecting before the ifb goes
        if ifb in {link["ifname"] for link in _ifb_links(namespace)}:
            _del_link(namespace, ifb)


def clear(namespace, instance_id, tap=None):
    """Remove everything `apply` made for the instance: its ifb always, the tap's tbf root and
    ingress qdisc when `tap` is given and still exists. Missing devices and qdiscs are fine."""
    if tap is not None and _link_exists(namespace, tap):
        qdiscs = _run(namespace, ["tc", "-j", "qdisc", "show", "dev", tap], ok_errors=NOT_FOUND)
        qdiscs = json.loads(qdiscs) if qdiscs and qdiscs.strip() else []
        if _ingress(qdiscs):
            _del_ingress(namespace, tap)
        if _root_tbf(qdiscs):
            _del_root(namespace, tap)
    _del_link(namespace, ifb_name(instance_id))


def _ifb_links(namespace):
    return _json(namespace, ["ip", "-j", "link", "show", "type", "ifb"])


def list_ifbs(namespace):
    """Names of the instance ifbs present in the namespace (for reconcile to find leftovers)."""
    return sorted(link["ifname"] for link in _ifb_links(namespace) if is_instance_ifb(link["ifname"]))


def read(namespace, tap, instance_id):
    """(inbound_kib, outbound_kib) currently applied to the tap (0 = none). Outbound counts only
    when the tap's ingress really redirects to the instance's ifb and that has a tbf root."""
    tap_qdiscs = _qdiscs(namespace, tap)
    root = _root_tbf(tap_qdiscs)
    inbound = root["options"]["rate"] // 1024 if root else 0
    outbound = 0
    ifb = ifb_name(instance_id)
    if _ingress(tap_qdiscs) and _link_exists(namespace, ifb) and _redirects_to(namespace, tap, ifb):
        ifb_root = _root_tbf(_qdiscs(namespace, ifb))
        outbound = ifb_root["options"]["rate"] // 1024 if ifb_root else 0
    return inbound, outbound
