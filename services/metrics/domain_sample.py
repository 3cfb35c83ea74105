"""One domain of a `domain_stats` event loaded on the hot path: every domain of every host every
step (5 s) comes through here, and marshmallow's DomainSampleEvent took ~120 µs a sample, four
times the rrdtool update that stores it.

`load_domain_sample` checks by hand the shape a host agent sends (JSON ints, strings, lists of
objects; hostagent/stats.py) with DomainSampleEvent's rules and returns what the schema would;
anything else (an int sent as a string or a float, an unknown key inside a disk, a null where none
is allowed, a rule broken) goes to the schema, which loads it or raises InvalidInput naming the
field. So the fast path never decides a rejection, and it can only accept what the schema accepts
with the same result: tests/metrics/test_domain_sample.py feeds both the same payloads. The schema
stays the documented contract; change a rule there and here together (the test fails otherwise).
"""
import uuid

from common.schemas import load
from services.metrics.schemas import COUNTERS, DomainSampleEvent

# Kept: marshmallow builds a schema's fields per instance.
_SCHEMA = DomainSampleEvent()

_OPTIONAL_INTS = ("memory_internal_free_kib",)
_DISK_INTS = frozenset({"read_bytes", "write_bytes", "read_reqs", "write_reqs"})
_NIC_COUNTERS = frozenset({"rx_bytes", "tx_bytes"})
# The schema's fields: other top-level keys are left out, as its `unknown = EXCLUDE` does.
_FIELDS = frozenset(_SCHEMA.fields)
_UUIDS_SEEN = set()
_MAX_UUIDS_SEEN = 100_000


def load_domain_sample(entry):
    """The loaded sample (a new dict); InvalidInput (from the schema) when it is not valid."""
    loaded = _plain(entry)
    return load(_SCHEMA, entry) if loaded is None else loaded


def _is_int(value):
    return type(value) is int  # bool is an int subclass, and marshmallow refuses it


def _plain(entry):
    """The sample when it has the agent's plain shape and passes every rule; else None."""
    if type(entry) is not dict:
        return None
    instance_id = entry.get("instance_id")
    if type(instance_id) is not str or not _is_uuid(instance_id):
        return None
    vcpus = entry.get("vcpus", ...)
    if vcpus is not None and not (_is_int(vcpus) and vcpus >= 1):
        return None  # also when absent (...): it is required
    get = entry.get
    for name in COUNTERS:
        value = get(name, ...)  # required: absent (...) is not an int
        if value is not None and (type(value) is not int or value < 0):
            return None
    # The agent sends the schema's fields only: a copy, without looking at each key.
    loaded = dict(entry) if entry.keys() <= _FIELDS else {key: value for key, value in entry.items()
                                                          if key in _FIELDS}
    if "state" in entry and type(entry["state"]) is not str:
        return None
    for name in _OPTIONAL_INTS:
        if name in entry and not (entry[name] is None or _is_int(entry[name])):
            return None
    if "vcpu_time_ns" in entry:
        times = entry["vcpu_time_ns"]
        if times is not None:
            if type(times) is not list:
                return None
            for t in times:
                if t is not None and type(t) is not int:
                    return None
            loaded["vcpu_time_ns"] = list(times)
    if "disks" in entry:
        disks = _devices(entry["disks"], "device", str, _DISK_INTS)
        if disks is None:
            return None
        loaded["disks"] = disks
    if "nics" in entry:
        nics = _devices(entry["nics"], "index", int, _NIC_COUNTERS)
        if nics is None:
            return None
        loaded["nics"] = nics
    return loaded


def _devices(items, key_name, key_type, counter_names):
    """Copies of a list of device objects (DiskSampleSchema / NicSampleSchema: strict, so an
    unknown key is an error, left to the schema); None unless all are plain and valid."""
    if type(items) is not list:
        return None
    copies = []
    for item in items:
        if type(item) is not dict:
            return None
        for name, value in item.items():
            if name == key_name:
                if type(value) is not key_type:
                    return None
            elif name not in counter_names or (value is not None and type(value) is not int):
                return None
        copies.append(dict(item))
    return copies


def _is_uuid(value):
    if value in _UUIDS_SEEN:  # the same instances every step: parsed once
        return True
    try:
        uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return False
    if len(_UUIDS_SEEN) >= _MAX_UUIDS_SEEN:  # bounded: instances come and go for years
        _UUIDS_SEEN.clear()
    _UUIDS_SEEN.add(value)
    return True
