"""The hot-path loader of a domain sample (services/metrics/domain_sample.py) against the schema it
stands in for (DomainSampleEvent): the same payloads, good and bad, through both; they must agree
on every one, so a rule changed in one and not the other fails here."""
import copy
import datetime as dt
import uuid

import pytest

import hostagent.schemas as hostagent_schemas
from common.errors import InvalidInput
from common.schemas import dump, load
from services.metrics.domain_sample import _plain, load_domain_sample
from services.metrics.schemas import DomainSampleEvent

SCHEMA = DomainSampleEvent()
VM = "6f9619ff-8b86-d011-b42d-00c04fc964ff"


def agent_sample(**overrides):
    """A domain as hostagent/stats.py reports it: two vCPUs, one disk, one NIC."""
    entry = {"instance_id": VM, "state": "running", "vcpus": 2, "cpu_time_ns": 15 * 10**8,
             "vcpu_time_ns": [10**9, 5 * 10**8], "memory_kib": 1 << 20,
             "memory_internal_free_kib": 1 << 18, "disk_read_bytes": 4096, "disk_write_bytes": 8192,
             "disks": [{"device": "vda", "read_bytes": 4096, "write_bytes": 8192, "read_reqs": 1,
                        "write_reqs": 2}],
             "net_rx_bytes": 1000, "net_tx_bytes": 500, "nics": [{"index": 0, "rx_bytes": 1000, "tx_bytes": 500}]}
    entry.update(overrides)
    return entry


def without(entry, key):
    return {k: v for k, v in entry.items() if k != key}


def with_disk(**overrides):
    return agent_sample(disks=[{**agent_sample()["disks"][0], **overrides}])


def with_nic(**overrides):
    return agent_sample(nics=[{**agent_sample()["nics"][0], **overrides}])


# Plain payloads a host agent sends: the fast path must take each of them.
PLAIN = [
    agent_sample(),
    agent_sample(vcpus=None, cpu_time_ns=None, memory_kib=None, disk_read_bytes=None,
                 disk_write_bytes=None, net_rx_bytes=None, net_tx_bytes=None),
    agent_sample(vcpu_time_ns=None, memory_internal_free_kib=None),
    agent_sample(vcpu_time_ns=[None, 7], disks=[], nics=[]),
    agent_sample(instance_id=VM.upper()),
    agent_sample(instance_id="{" + VM + "}"),  # uuid.UUID reads it; the id is kept as sent
    agent_sample(vcpus=1, cpu_time_ns=0, memory_kib=0, net_tx_bytes=2**70),
    agent_sample(newer_agent_field="x"),  # unknown top-level keys are left out
    without(without(without(agent_sample(), "state"), "disks"), "nics"),
    without(agent_sample(), "vcpu_time_ns"),
    with_disk(read_bytes=None, write_reqs=-3),  # the disk's schema has no sign rule
    agent_sample(disks=[{}], nics=[{"index": 3}]),
    with_nic(index=-1, rx_bytes=None),
    dump(hostagent_schemas.DomainSampleSchema, agent_sample()),
]

REPLACEMENTS = [None, -1, 0, 1, 2.0, 2.5, True, False, "3", "x", [], {}, [1], 2**64]
TOP_FIELDS = ["instance_id", "state", "vcpus", "cpu_time_ns", "vcpu_time_ns", "memory_kib",
              "memory_internal_free_kib", "disk_read_bytes", "disk_write_bytes", "disks",
              "net_rx_bytes", "net_tx_bytes", "nics"]
DISK_FIELDS = ["device", "read_bytes", "write_bytes", "read_reqs", "write_reqs"]
NIC_FIELDS = ["index", "rx_bytes", "tx_bytes"]


def mutations():
    """Every field replaced by every kind of value, and left out; the same in a disk and a NIC;
    odd shapes of the lists and the entry."""
    for name in TOP_FIELDS:
        yield without(agent_sample(), name)
        for value in REPLACEMENTS:
            yield agent_sample(**{name: value})
    for name in DISK_FIELDS:
        yield agent_sample(disks=[without(agent_sample()["disks"][0], name)])
        for value in REPLACEMENTS:
            yield with_disk(**{name: value})
    for name in NIC_FIELDS:
        yield agent_sample(nics=[without(agent_sample()["nics"][0], name)])
        for value in REPLACEMENTS:
            yield with_nic(**{name: value})
    for value in REPLACEMENTS + [(1, 2), ("a",)]:
        yield agent_sample(vcpu_time_ns=[1, value])
        yield agent_sample(disks=[value])
        yield agent_sample(nics=[value])
    yield with_disk(serial="x")  # unknown inside a device: the strict device schemas refuse it
    yield with_nic(mac="52:54:00:00:00:01")
    yield agent_sample(instance_id="not-a-uuid")
    yield agent_sample(instance_id=str(uuid.uuid4())[:-1])
    yield agent_sample(disks=tuple(agent_sample()["disks"]))
    yield agent_sample(vcpu_time_ns=(1, 2))
    yield agent_sample(at=dt.datetime(2025, 1, 1))


def outcome(loader, payload):
    try:
        return "loaded", loader(copy.deepcopy(payload))
    except InvalidInput as exc:
        return "invalid", exc.fields


def by_schema(payload):
    return load(SCHEMA, payload)


@pytest.mark.parametrize("payload", PLAIN + list(mutations()) + [None, [], "x", 5])
def test_the_hot_path_and_the_schema_agree(payload):
    assert outcome(load_domain_sample, payload) == outcome(by_schema, payload)


@pytest.mark.parametrize("payload", list(mutations()))
def test_what_the_hot_path_accepts_the_schema_accepts_alike(payload):
    fast = _plain(copy.deepcopy(payload))
    if fast is not None:
        assert fast == by_schema(copy.deepcopy(payload))


@pytest.mark.parametrize("payload", PLAIN)
def test_the_agents_plain_samples_take_the_hot_path(payload):
    fast = _plain(copy.deepcopy(payload))
    assert fast is not None and fast == by_schema(copy.deepcopy(payload))


def test_the_mutations_include_refusals_the_hot_path_leaves_to_the_schema():
    refused = [p for p in mutations() if outcome(by_schema, p)[0] == "invalid"]
    assert len(refused) > 50  # the agreement test above is not only about good payloads
    assert all(_plain(copy.deepcopy(p)) is None for p in refused)


def test_a_refusal_names_the_field():
    with pytest.raises(InvalidInput) as caught:
        load_domain_sample(agent_sample(cpu_time_ns=-5))
    assert caught.value.fields == {"cpu_time_ns": ["must not be negative"]}
    with pytest.raises(InvalidInput) as caught:
        load_domain_sample(with_disk(serial="x"))
    assert caught.value.fields == {"disks": {0: {"serial": ["Unknown field."]}}}


def test_the_loaded_sample_shares_no_list_with_the_payload():
    payload = agent_sample()
    loaded = load_domain_sample(payload)
    loaded["vcpu_time_ns"].append(1)
    loaded["disks"][0]["read_bytes"] = 0
    loaded["nics"].clear()
    assert payload == agent_sample()
