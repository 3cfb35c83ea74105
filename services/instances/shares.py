"""Resource shares of one instance, with XenServer's meanings. The one place that says what they
are, which values are allowed and what the host is told.

- cpu_weight: relative CPU weight, 1-65536 (default 256). On a contended host a guest of weight 512
  gets twice the CPU time of one of 256; on an idle host it changes nothing.
- cpu_cap: the most CPU the whole guest may use, in percent of ONE vCPU: 0 = no cap, 100 = one
  whole vCPU, 35 = at most 35% of one CPU even on an idle host; at most 100 x the guest's vCPUs.
- memory_mib: the guest's memory now (its balloon target); at most the flavor's max_memory_mib,
  the size the domain was defined with, so it can grow again without a restart.
- bandwidth_in_kib / bandwidth_out_kib: KiB/s into / out of the guest, 0 = no limit.

The flavor gives the defaults at create; the owner or an admin changes them (lifecycle.set_shares);
the host agent maps them onto libvirt and tc (hostagent/shares.py, docs/architecture.md "Resource
shares").
"""
from common.errors import InvalidInput

FIELDS = ("cpu_weight", "cpu_cap", "memory_mib", "bandwidth_in_kib", "bandwidth_out_kib")
MIN_CPU_WEIGHT, MAX_CPU_WEIGHT, DEFAULT_CPU_WEIGHT = 1, 65536, 256
CAP_PER_VCPU = 100
MIN_MEMORY_MIB = 64
MAX_BANDWIDTH_KIB = 10 * 1024 * 1024   # 10 GiB/s: beyond any host NIC; anything above is a typo


def flavor_defaults(flavor):
    """A new instance's shares: its flavor's, with no bandwidth limit."""
    return {"cpu_weight": flavor.cpu_weight, "cpu_cap": flavor.cpu_cap_percent,
            "memory_mib": flavor.memory_mib, "bandwidth_in_kib": 0, "bandwidth_out_kib": 0}


def current(instance):
    return {field: getattr(instance, field) for field in FIELDS}


def max_cap(flavor):
    return CAP_PER_VCPU * flavor.vcpus


def check_fits_flavor(changes, flavor):
    """The limits that depend on the flavor (the schema checked the fixed ranges); 400 naming the
    field otherwise."""
    errors = {}
    cap = changes.get("cpu_cap")
    if cap is not None and cap > max_cap(flavor):
        errors["cpu_cap"] = [f"at most {max_cap(flavor)} (100 x the flavor's {flavor.vcpus} vCPUs)"]
    memory = changes.get("memory_mib")
    if memory is not None and memory > flavor.max_memory_mib:
        errors["memory_mib"] = [f"at most {flavor.max_memory_mib}, flavor {flavor.name}'s maximum; "
                                "resize to a larger flavor for more"]
    if errors:
        raise InvalidInput("; ".join(f"{field}: {messages[0]}" for field, messages in errors.items()),
                           errors)


def host_request(instance, flavor, values=None):
    """What the host agent's set_domain_shares is told: absolute values, so a repeat changes
    nothing (at-least-once delivery)."""
    values = values or current(instance)
    return {"instance_id": instance.id, "vcpus": flavor.vcpus, "max_memory_mib": flavor.max_memory_mib,
            **{field: values[field] for field in FIELDS}}
