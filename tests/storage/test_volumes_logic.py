"""services/storage/volumes.py on its own, against the storage service's migrated database
(SQLite and PostgreSQL): where a new volume goes, what refuses an attach, which device it takes (also when two
attaches race for one), what the quota counts, and that an instance's delete releases exactly its
volumes."""
import datetime as dt
import json
import os
import sys

import pytest
from sqlalchemy.orm import sessionmaker

from common.db import make_engine
from common.errors import Conflict, HostOperationFailed, QuotaExceeded
from services.storage import volumes
from services.storage.models import Volume
from tests.instances.racing import race
from tests.databases import migrated_url

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ACTOR = {"id": 7, "username": "stud", "role": "user", "projects": [{"id": 10, "role": "member"}]}
INSTANCE = "3f1c2b8e-2d4b-4a39-9d0e-5d5b7f0a1c11"
OTHER_INSTANCE = "9a6e0c43-1f53-4c0e-8a5d-0e2f6d9b7a22"
NOW = dt.datetime(2026, 12, 2, 4, 0, 0)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request):
    return migrated_url(request, request.param, "services.storage")


@pytest.fixture
def session(url):
    engine = make_engine(url)
    with sessionmaker(bind=engine, expire_on_commit=False)() as session:
        yield session
    engine.dispose()


def volume(session, name, size_gib=1, host="h1", state="available", user_id=ACTOR["id"], project_id=10, **extra):
    row = Volume(name=f"data-{name}.qcow2", kind="data", host=host, capacity_bytes=size_gib << 30, path=f"/p/{name}",
                 display_name=name, project_id=project_id, user_id=user_id, size_gib=size_gib, state=state, **extra)
    session.add(row)
    session.commit()
    return row


def test_a_volume_without_a_place_goes_to_the_enabled_up_host_with_most_disk_left():
    hosts = [{"name": "a", "up": True, "state": "enabled", "disk_gib": 100, "allocated_disk_gib": 90},
             {"name": "b", "up": True, "state": "enabled", "disk_gib": 50, "allocated_disk_gib": 10},
             {"name": "c", "up": False, "state": "enabled", "disk_gib": 900, "allocated_disk_gib": 0},
             {"name": "d", "up": True, "state": "disabled", "disk_gib": 900, "allocated_disk_gib": 0}]
    assert volumes.pick_host(hosts, 1) == "b"
    with pytest.raises(HostOperationFailed):
        volumes.pick_host(hosts[2:], 1)


@pytest.mark.parametrize("instance,field_says", [
    ({"id": INSTANCE, "name": "vm", "project": 11, "state": "running", "host": "h1"}, "project"),
    ({"id": INSTANCE, "name": "vm", "project": 10, "state": "building", "host": "h1"}, "instance is building"),
    ({"id": INSTANCE, "name": "vm", "project": 10, "state": "stopped", "host": "h2"}, "on host h2, the volume on h1"),
])
def test_an_attach_is_refused_naming_the_instance(session, instance, field_says):
    row = volume(session, "v")
    with pytest.raises(Conflict) as refused:
        volumes.check_attachable(row, instance)
    assert field_says in refused.value.fields["instance"][0]


def test_attachable_instances_pass(session):
    row = volume(session, "v")
    for state in ("running", "stopped"):
        volumes.check_attachable(row, {"id": INSTANCE, "name": "vm", "project": 10, "state": state, "host": "h1"})


def test_devices_are_the_lowest_free_per_instance_and_a_repeat_keeps_its_claim(session):
    first, second, third = volume(session, "a"), volume(session, "b"), volume(session, "c")
    assert volumes.claim_attachment(session, first, INSTANCE, NOW).device == "vdb"
    assert volumes.claim_attachment(session, second, INSTANCE, NOW).device == "vdc"
    assert volumes.claim_attachment(session, first, INSTANCE, NOW).device == "vdb"  # asked again
    assert volumes.claim_attachment(session, third, OTHER_INSTANCE, NOW).device == "vdb"  # another instance
    assert volumes.released(session, first.id, INSTANCE)
    fourth = volume(session, "d")
    assert volumes.claim_attachment(session, fourth, INSTANCE, NOW).device == "vdb"  # freed, reused
    with pytest.raises(Conflict) as busy:
        volumes.claim_attachment(session, second, OTHER_INSTANCE, NOW)
    assert busy.value.fields == {"state": ["in-use"]}


def test_two_attaches_racing_for_one_device_end_on_two(session, monkeypatch):
    """The second attach read the devices before the first one's claim committed: the unique
    (instance, device) index refuses its vdb, and it takes the next one."""
    first, second = volume(session, "a"), volume(session, "b")
    stale = []
    real = volumes.instance_volumes

    def read_before_the_other_claim(session_, instance_id):
        if not stale:
            stale.append(True)
            return []  # what it saw before `first` was claimed
        return real(session_, instance_id)
    volumes.claim_attachment(session, first, INSTANCE, NOW)
    monkeypatch.setattr(volumes, "instance_volumes", read_before_the_other_claim)
    assert volumes.claim_attachment(session, second, INSTANCE, NOW).device == "vdc"


def test_an_instance_delete_releases_its_volumes_only(session):
    mine, other = volume(session, "a"), volume(session, "b")
    volumes.claim_attachment(session, mine, INSTANCE, NOW)
    volumes.claim_attachment(session, other, OTHER_INSTANCE, NOW)
    assert volumes.release_instance_volumes(session, INSTANCE) == 1
    assert volumes.release_instance_volumes(session, INSTANCE) == 0
    session.expire_all()
    assert (session.get(Volume, mine.id).state, session.get(Volume, mine.id).device) == ("available", None)
    assert session.get(Volume, other.id).state == "in-use"


def test_usage_counts_every_data_volume_of_the_project_by_user(session):
    volume(session, "a", size_gib=3)
    volume(session, "b", size_gib=2, state="error", user_id=8)
    volume(session, "c", size_gib=5, project_id=11)
    session.add(Volume(name="root-x.qcow2", kind="root", host="h1", capacity_bytes=1 << 30, state="available"))
    session.commit()
    assert volumes.project_usage(session, 10) == {
        "project": {"volumes": 2, "volume_gib": 5},
        "users": {7: {"volumes": 1, "volume_gib": 3}, 8: {"volumes": 1, "volume_gib": 2}}}


def test_a_create_over_quota_writes_nothing(session):
    volume(session, "a", size_gib=4)
    request = {"name": "b", "size_gib": 2, "snapshot": None, "image": None}
    limits = {"project": {"volumes": 5, "volume_gib": 5}, "user": {}}
    with pytest.raises(QuotaExceeded) as over:
        volumes.record_volume(session, ACTOR, request, 10, 2, "h1", limits)
    assert over.value.fields == {"volume_gib": ["project limit 5, in use 4, requested 2"]}
    assert volumes.named_volume(session, 10, "b") is None
    made = volumes.record_volume(session, ACTOR, {**request, "size_gib": 1}, 10, 1, "h1", limits)
    assert made.state == "creating" and made.host == "h1"
    # The same request again is the same row; the same name otherwise is taken.
    assert volumes.record_volume(session, ACTOR, {**request, "size_gib": 1}, 10, 1, "h1", limits).id == made.id
    with pytest.raises(Conflict):
        volumes.record_volume(session, ACTOR, {**request, "size_gib": 3}, 10, 3, "h1", limits)


def test_processes_racing_for_the_last_volumes_never_exceed_the_quota(url):
    """Four processes (as four storage replicas would) each try five creates in one project at the
    same moment; the project may hold eight volumes (and 100 GiB), each user at most three."""
    limits = json.dumps({"project": {"volumes": 8, "volume_gib": 100}, "user": {"volumes": 3}})
    outputs = race([[sys.executable, "-m", "tests.quota_race_worker", "volumes", url, str(100 + n), "5", limits]
                    for n in range(4)], REPO)
    results = [json.loads(out) for out in outputs]
    assert sum(r["accepted"] for r in results) == 8, results
    assert all(r["accepted"] <= 3 for r in results) and sum(r["refused"] for r in results) == 12, results


def test_a_deleted_users_volumes_and_snapshots_go_to_whom_they_are_given(session):
    from services.storage.models import Snapshot
    mine, theirs = volume(session, "a"), volume(session, "b", user_id=8)
    session.add(Snapshot(name="s", pool_name="snap-s.qcow2", project_id=10, user_id=7, volume_id=mine.id, host="h1",
                         size_gib=1, state="available"))
    session.commit()
    assert volumes.transfer_volumes(session, 7, 9) == 2
    assert volumes.transfer_volumes(session, 7, 9) == 0  # the event again
    session.expire_all()
    assert (session.get(Volume, mine.id).user_id, session.get(Volume, theirs.id).user_id) == (9, 8)
