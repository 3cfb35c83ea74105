"""Data volumes through the storage service over the real broker, with a real host agent on
libvirt's test driver (its domains take disks in their definition: no hot-plug there) and the
instances and accounts services stood in for by small services answering what storage asks.
At the end, a host pool against the records both ways, as reconcile asks: files no record owns are
reported and deleted only while still unowned; recorded volumes whose disk is gone go to `error`;
names labcloud does not give are never touched."""
import datetime as dt
import uuid

import libvirt
import pytest
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_hook

from common.clock import utcnow
from common.db import make_engine, session_scope
from common.errors import Conflict, Forbidden, HostOperationFailed, InvalidInput, NotFound, QuotaExceeded
from hostagent.service import make_service
from services.storage.models import Image, Volume
from services.storage.service import StorageService

GIB = 1 << 30
STUDENT = {"id": 7, "username": "stud", "role": "user", "projects": [{"id": 10, "role": "member"}]}
CLASSMATE = {"id": 8, "username": "mate", "role": "user", "projects": [{"id": 10, "role": "member"}]}
TEACHER = {"id": 9, "username": "teach", "role": "user", "projects": [{"id": 10, "role": "manager"}]}
ADMIN = {"id": 1, "username": "admin", "role": "admin", "projects": []}


class World:
    """What the stand-ins answer: instances by id, hosts, project limits."""
    instances, hosts, limits = {}, [], {}


class FakeInstances:
    name = "instances"

    @rpc
    def get_instance(self, actor, instance_id):
        instance = World.instances.get(instance_id)
        if instance is None or (actor["role"] != "admin" and instance["user_id"] != actor["id"]
                                and actor["id"] != TEACHER["id"]):
            raise NotFound(f"no instance {instance_id}")
        return instance

    @rpc
    def list_hosts(self, actor=None):
        return World.hosts


class FakeAccounts:
    name = "accounts"

    @rpc
    def get_quota_limits(self, project_id, user_id):
        return {"project": World.limits, "user": {}}


@pytest.fixture
def host():
    return f"v-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def cloud(container_factory, service_config, migrated_database, host):
    pool = f"vp-{uuid.uuid4().hex[:8]}"
    agent_config = service_config(LIBVIRT_URI="test:///default", POOL_NAME=pool, POOL_PATH=f"/labcloud-test/{pool}",
                                  HEARTBEAT_INTERVAL=60, STATS_INTERVAL=60)
    container_factory(make_service(host), agent_config).start()
    config = service_config(DATABASE_URL=migrated_database("services.storage"), DATA_DIR="/srv/labcloud",
                            HOST_RPC_TIMEOUT=5, VOLUME_RECONCILE_INTERVAL=3600)
    World.instances, World.limits = {}, {"volumes": 3, "volume_gib": 10}
    World.hosts = [{"name": host, "up": True, "state": "enabled", "disk_gib": 100, "allocated_disk_gib": 0},
                   {"name": "down-host", "up": False, "state": "enabled", "disk_gib": 1000, "allocated_disk_gib": 0}]
    for service in (FakeInstances, FakeAccounts, StorageService):
        container = container_factory(service, config)
        container.start()
    World.storage = container
    return config


@pytest.fixture
def conn():
    connection = libvirt.open("test:///default")  # the agent's in-process driver state
    yield connection
    connection.close()


def make_instance(config, host, user_id=STUDENT["id"], state="running", project=10):
    """A domain on the test driver and what the instances service would say of it."""
    instance_id = str(uuid.uuid4())
    with ServiceRpcProxy(f"hostagent_{host}", config) as agent:
        agent.create_domain({"instance_id": instance_id, "name": f"vm-{instance_id[:8]}", "vcpus": 1,
                             "memory_mib": 128, "cpu_weight": 256, "cpu_cap": 0,
                             "disk_path": f"/labcloud-test/root-{instance_id}.qcow2",
                             "mac": "aa:00:0a:63:00:09", "ip": "10.99.0.9"})
    World.instances[instance_id] = {"id": instance_id, "name": f"vm-{instance_id[:8]}", "host": host,
                                    "state": state, "project": project, "user_id": user_id}
    return instance_id


def disks_of(conn, instance_id):
    from hostagent.volume_devices import disks_of as parse
    return parse(conn.lookupByUUIDString(instance_id).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))


def test_create_attach_detach_move_and_delete(cloud, conn, host):
    first, second = make_instance(cloud, host), make_instance(cloud, host)
    with ServiceRpcProxy("storage", cloud) as storage:
        volume = storage.create_volume(STUDENT, {"name": "data", "size_gib": 2})
        assert volume["state"] == "available" and volume["host"] == host and volume["size_gib"] == 2
        assert volume["project"] == 10 and volume["user_id"] == STUDENT["id"] and volume["device"] is None
        # The same request again: the same volume (RPC is at-least-once); another size: the name is taken.
        assert storage.create_volume(STUDENT, {"name": "data", "size_gib": 2}) == volume
        with pytest.raises(Conflict) as taken:
            storage.create_volume(STUDENT, {"name": "data", "size_gib": 3})
        assert "name" in taken.value.fields

        attached = storage.attach_volume(STUDENT, volume["id"], {"instance": first})
        assert (attached["state"], attached["attach_state"], attached["device"], attached["instance"]) == (
            "in-use", "attached", "vdb", first)
        assert disks_of(conn, first)["vdb"] == _volume_row(cloud, volume["id"]).path
        assert storage.attach_volume(STUDENT, volume["id"], {"instance": first}) == attached  # a repeat
        with pytest.raises(Conflict) as busy:
            storage.attach_volume(STUDENT, volume["id"], {"instance": second})
        assert busy.value.fields == {"state": ["in-use"]}
        with pytest.raises(Conflict) as in_use:
            storage.delete_volume(STUDENT, volume["id"])
        assert in_use.value.fields == {"state": ["in-use"]}
        assert storage.list_instance_volumes(first) == [
            {"id": volume["id"], "name": "data", "size_gib": 2, "device": "vdb", "attach_state": "attached"}]

        # A second volume on the same instance takes the next device.
        other = storage.create_volume(STUDENT, {"name": "more", "size_gib": 1})
        assert storage.attach_volume(STUDENT, other["id"], {"instance": first})["device"] == "vdc"

        detached = storage.detach_volume(STUDENT, volume["id"])
        assert (detached["state"], detached["device"], detached["instance"]) == ("available", None, None)
        assert "vdb" not in disks_of(conn, first) and "vdc" in disks_of(conn, first)
        assert storage.detach_volume(STUDENT, volume["id"]) == detached  # a repeat
        # The same disk moves to another instance, on the lowest free device there.
        moved = storage.attach_volume(STUDENT, volume["id"], {"instance": second})
        assert moved["device"] == "vdb" and disks_of(conn, second)["vdb"] == _volume_row(cloud, volume["id"]).path

        # Deleting an instance (its domain gone first) releases its volumes: available, data kept.
        conn.lookupByUUIDString(second).destroy()
        assert storage.release_instance_volumes({"instance_id": second}) == {"released": 1}
        assert storage.release_instance_volumes({"instance_id": second}) == {"released": 0}
        assert storage.get_volume(STUDENT, volume["id"])["state"] == "available"

        deleted = storage.delete_volume(STUDENT, volume["id"])
        assert deleted["state"] == "deleted"
        with pytest.raises(NotFound):
            storage.get_volume(STUDENT, volume["id"])
        # Its disk went from the host's pool; the other volume's stays.
        left = _volume_row(cloud, other["id"])
        assert [v.name() for v in conn.storagePoolLookupByName(left.pool).listAllVolumes(0)] == [left.name]


def _volume_row(config, volume_id):
    engine = make_engine(config["DATABASE_URL"])
    with session_scope(engine) as session:
        row = session.get(Volume, volume_id)
        session.expunge(row)
    return row


def test_a_volume_attaches_only_to_an_instance_on_its_own_host_of_its_project(cloud, conn, host):
    instance = make_instance(cloud, host)
    elsewhere = str(uuid.uuid4())
    World.instances[elsewhere] = {"id": elsewhere, "name": "far", "host": "other-host", "state": "running",
                                  "project": 10, "user_id": STUDENT["id"]}
    foreign = make_instance(cloud, host, project=20)
    building = make_instance(cloud, host, state="building")
    with ServiceRpcProxy("storage", cloud) as storage:
        volume = storage.create_volume(STUDENT, {"name": "v1", "size_gib": 1})
        with pytest.raises(Conflict) as refused:
            storage.attach_volume(STUDENT, volume["id"], {"instance": elsewhere})
        assert "instance" in refused.value.fields and "other-host" in str(refused.value)
        with pytest.raises(Conflict) as refused:
            storage.attach_volume(STUDENT, volume["id"], {"instance": foreign})
        assert "instance" in refused.value.fields
        with pytest.raises(Conflict) as refused:
            storage.attach_volume(STUDENT, volume["id"], {"instance": building})
        assert refused.value.fields == {"instance": ["instance is building"]}
        with pytest.raises(NotFound) as unknown:
            storage.attach_volume(STUDENT, volume["id"], {"instance": str(uuid.uuid4())})
        assert "instance" in unknown.value.fields
        with pytest.raises(InvalidInput) as bad:
            storage.attach_volume(STUDENT, volume["id"], {"instance": "not-a-uuid"})
        assert "instance" in bad.value.fields
        # Nothing changed on the refusals.
        assert storage.get_volume(STUDENT, volume["id"])["state"] == "available"
        # Made for an instance: on its host.
        assert storage.create_volume(STUDENT, {"name": "v2", "size_gib": 1, "instance": instance})["host"] == host


def test_who_may_see_and_act(cloud, conn, host):
    with ServiceRpcProxy("storage", cloud) as storage:
        volume = storage.create_volume(STUDENT, {"name": "mine", "size_gib": 1})
        with pytest.raises(NotFound):
            storage.get_volume(CLASSMATE, volume["id"])  # another member: as if missing
        with pytest.raises(NotFound):
            storage.delete_volume(CLASSMATE, volume["id"])
        assert storage.list_data_volumes(CLASSMATE) == []
        assert [v["id"] for v in storage.list_data_volumes(TEACHER)] == [volume["id"]]
        assert storage.get_volume(TEACHER, volume["id"])["name"] == "mine"
        with pytest.raises(Forbidden):
            storage.create_volume(STUDENT, {"name": "x", "size_gib": 1, "project": 20})
        with pytest.raises(Forbidden) as no_project:
            storage.create_volume(ADMIN, {"name": "x", "size_gib": 1})
        assert "project" in no_project.value.fields
        assert storage.delete_volume(TEACHER, volume["id"])["state"] == "deleted"


def test_quota_counts_volumes_and_gib_per_project(cloud, conn, host):
    with ServiceRpcProxy("storage", cloud) as storage:
        storage.create_volume(STUDENT, {"name": "a", "size_gib": 6})
        with pytest.raises(QuotaExceeded) as over:
            storage.create_volume(CLASSMATE, {"name": "b", "size_gib": 5})
        assert over.value.fields == {"volume_gib": ["project limit 10, in use 6, requested 5"]}
        storage.create_volume(CLASSMATE, {"name": "b", "size_gib": 2})
        storage.create_volume(CLASSMATE, {"name": "c", "size_gib": 1})
        with pytest.raises(QuotaExceeded) as over:
            storage.create_volume(STUDENT, {"name": "d", "size_gib": 1})
        assert set(over.value.fields) == {"volumes"}
        assert storage.get_project_usage(10) == {
            "project": {"volumes": 3, "volume_gib": 9},
            "users": {str(STUDENT["id"]): {"volumes": 1, "volume_gib": 6},
                      str(CLASSMATE["id"]): {"volumes": 2, "volume_gib": 3}}}
        with pytest.raises(InvalidInput) as bad:
            storage.create_volume(STUDENT, {"name": "e"})
        assert "size_gib" in bad.value.fields


def test_snapshots_copy_the_volume_and_new_volumes_come_from_them(cloud, conn, host):
    with ServiceRpcProxy("storage", cloud) as storage:
        volume = storage.create_volume(STUDENT, {"name": "src", "size_gib": 2})
        snapshot = storage.create_snapshot(STUDENT, volume["id"], {"name": "s1"})
        assert (snapshot["state"], snapshot["volume"], snapshot["size_gib"], snapshot["host"]) == (
            "available", volume["id"], 2, host)
        assert storage.create_snapshot(STUDENT, volume["id"], {"name": "s1"}) == snapshot  # a repeat
        with pytest.raises(InvalidInput) as small:
            storage.create_volume(STUDENT, {"name": "copy", "snapshot": snapshot["id"], "size_gib": 1})
        assert "size_gib" in small.value.fields
        copy = storage.create_volume(STUDENT, {"name": "copy", "snapshot": snapshot["id"]})
        assert (copy["state"], copy["size_gib"], copy["snapshot"], copy["host"]) == ("available", 2, snapshot["id"], host)
        # The snapshot outlives its volume; deleting it removes its copy on the host.
        storage.delete_volume(STUDENT, volume["id"])
        assert [s["id"] for s in storage.list_snapshots(STUDENT)] == [snapshot["id"]]
        assert storage.delete_snapshot(STUDENT, snapshot["id"])["state"] == "deleted"
        assert storage.list_snapshots(STUDENT) == []
        with pytest.raises(NotFound) as gone:
            storage.create_volume(STUDENT, {"name": "again", "snapshot": snapshot["id"]})
        assert "snapshot" in gone.value.fields
        from_image = storage.create_volume(STUDENT, {"name": "img", "image": 1})
        assert from_image["image"] == 1 and from_image["size_gib"] == 1


def test_a_failed_attach_leaves_no_device_and_an_available_volume(cloud, conn, host):
    instance = make_instance(cloud, host)
    with ServiceRpcProxy("storage", cloud) as storage:
        volume = storage.create_volume(STUDENT, {"name": "v", "size_gib": 1})
        conn.lookupByUUIDString(instance).undefine()  # the domain went behind our back: the host refuses
        conn.lookupByUUIDString(instance).destroy()
        with pytest.raises(HostOperationFailed):
            storage.attach_volume(STUDENT, volume["id"], {"instance": instance})
        after = storage.get_volume(STUDENT, volume["id"])
        assert (after["state"], after["device"], after["attach_state"]) == ("available", None, None)
        assert "attach to" in after["reason"]


def test_an_interrupted_attach_and_create_are_finished_or_undone(cloud, conn, host):
    """A worker that died after claiming (attaching) or recording (creating): a repeat finishes
    the attach; reconcile, past the grace period, undoes both."""
    import datetime as dt
    from services.storage import volumes as logic
    instance = make_instance(cloud, host)
    engine = make_engine(cloud["DATABASE_URL"])
    with ServiceRpcProxy("storage", cloud) as storage:
        volume = storage.create_volume(STUDENT, {"name": "v", "size_gib": 1})
        with session_scope(engine) as session:
            row = session.get(Volume, volume["id"])
            row.state, row.attach_state, row.instance_id, row.device = "in-use", "attaching", instance, "vdb"
        again = storage.attach_volume(STUDENT, volume["id"], {"instance": instance})
        assert (again["attach_state"], again["device"]) == ("attached", "vdb")
        assert "vdb" in disks_of(conn, instance)
        with session_scope(engine) as session:
            session.get(Volume, volume["id"]).attach_state = "attaching"
            stale = Volume(name="data-stale.qcow2", kind="data", host=host, capacity_bytes=GIB,
                           display_name="stale", project_id=10, user_id=STUDENT["id"], size_gib=1,
                           state="creating")
            session.add(stale)
        later = dt.datetime.utcnow() + logic.RECONCILE_GRACE + dt.timedelta(seconds=5)

        class Hosts:
            def __init__(self, proxy):
                self.proxy = proxy

            def __call__(self, name):
                return self.proxy

        with ServiceRpcProxy(f"hostagent_{host}", cloud) as agent, session_scope(engine) as session:
            done = logic.reconcile(session, Hosts(agent), later)
        assert sorted(action for _kind, _id, action in done) == ["create undone", "detached"]
        assert "vdb" not in disks_of(conn, instance)

        # A failed attach whose host answered too late: the disk reached the domain after the undo.
        row = _volume_row(cloud, volume["id"])
        with session_scope(engine) as session:
            session.get(Volume, volume["id"]).reason = f"attach to {instance} as vdc failed: timed out"
        with ServiceRpcProxy(f"hostagent_{host}", cloud) as agent:
            agent.attach_disk({"instance_id": instance, "path": row.path, "device": "vdc"})
            assert "vdc" in disks_of(conn, instance)
            with session_scope(engine) as session:
                done = logic.reconcile(session, Hosts(agent), later)
        assert done == [("volume", volume["id"], "leftover device removed")]
        assert "vdc" not in disks_of(conn, instance)
        assert storage.get_volume(STUDENT, volume["id"])["reason"] is None
        assert storage.get_volume(STUDENT, volume["id"])["state"] == "available"
        assert [v["name"] for v in storage.list_data_volumes(STUDENT)] == ["v"]


def test_a_volume_that_does_not_fit_the_hosts_pool_is_refused_naming_its_size(cloud, conn, host):
    """The test driver's pools hold 100 GiB: the data volumes of a host are never promised more."""
    World.limits = {}
    with ServiceRpcProxy("storage", cloud) as storage:
        first = storage.create_volume(STUDENT, {"name": "big", "size_gib": 60})
        with pytest.raises(Conflict) as refused:
            storage.create_volume(STUDENT, {"name": "bigger", "size_gib": 50})
        assert refused.value.fields == {"size_gib": [f"at most 40 GiB fit on {host}"]}
        assert "promised to data volumes" in str(refused.value)
        assert [v["name"] for v in storage.list_data_volumes(STUDENT)] == ["big"]  # nothing else made
        assert storage.create_volume(STUDENT, {"name": "big", "size_gib": 60}) == first  # a repeat needs no room
        [pool] = storage.list_pools(ADMIN)
        assert (pool["host"], pool["capacity_bytes"], pool["promised_bytes"], pool["volumes"]) == (
            host, 100 * GIB, 60 * GIB, 1)
        assert pool["allocation_bytes"] >= 60 * GIB and pool["available_bytes"] <= 40 * GIB  # the test driver's
        with pytest.raises(Forbidden):
            storage.list_pools(TEACHER)
        storage.delete_volume(STUDENT, first["id"])
        assert storage.create_volume(STUDENT, {"name": "bigger", "size_gib": 50})["state"] == "available"


def test_a_deleted_users_volumes_go_to_the_user_who_takes_their_things(cloud):
    with ServiceRpcProxy("storage", cloud) as storage:
        made = storage.create_volume(STUDENT, {"name": "kept", "size_gib": 1})
        with pytest.raises(NotFound):
            storage.get_volume(CLASSMATE, made["id"])
        with entrypoint_hook(World.storage, "on_user_deleted") as deleted:
            deleted({"user_id": STUDENT["id"], "username": "stud", "transfer_to": CLASSMATE["id"]})
            deleted({"user_id": STUDENT["id"], "username": "stud", "transfer_to": CLASSMATE["id"]})  # redelivered
        assert storage.get_volume(CLASSMATE, made["id"])["user_id"] == CLASSMATE["id"]
        with entrypoint_hook(World.storage, "on_user_deleted") as deleted:
            deleted({"user_id": CLASSMATE["id"], "username": "mate", "transfer_to": None})
        assert storage.get_volume(TEACHER, made["id"])["user_id"] == CLASSMATE["id"]  # kept for the course


# ----- a host pool against the records, both ways (what reconcile asks) -----

def pool_names(config, host):
    with ServiceRpcProxy(f"hostagent_{host}", config) as agent:
        return {v["name"] for v in agent.get_inventory()["volumes"]}


def test_unowned_volumes_are_named_and_deleted_only_while_unowned(cloud, host):
    stray_data, stray_snap = f"data-{uuid.uuid4()}.qcow2", f"snap-{uuid.uuid4()}.qcow2"
    with session_scope(make_engine(cloud["DATABASE_URL"])) as session:  # deleted while this host was away
        session.add(Image(id=998, name="gone", format="qcow2", size_bytes=1 << 20, source_path="images/gone.qcow2",
                          state="deleted"))
    with ServiceRpcProxy(f"hostagent_{host}", cloud) as agent:
        for name in (stray_data, stray_snap, "image-998.qcow2", "image-999.qcow2", "someone-elses.img"):
            agent.create_volume({"name": name, "capacity_bytes": 1 << 20, "format": "qcow2"})
    with ServiceRpcProxy("storage", cloud) as storage:
        volume = storage.create_volume(STUDENT, {"name": "data", "size_gib": 1})
        owned = _volume_row(cloud, volume["id"]).name
        names = sorted(pool_names(cloud, host))
        checked = storage.check_host_volumes({"host": host, "names": names, "listed_at": utcnow().isoformat()})
        assert checked == {"unowned": sorted([stray_data, stray_snap, "image-998.qcow2", "image-999.qcow2"]),
                           "missing_volumes": []}

        assert storage.delete_unowned_volume({"host": host, "name": stray_data}) == {"deleted": True, "owned": False}
        assert storage.delete_unowned_volume({"host": host, "name": owned}) == {"deleted": False, "owned": True}
        with pytest.raises(InvalidInput) as not_ours:
            storage.delete_unowned_volume({"host": host, "name": "someone-elses.img"})
        assert "name" in not_ours.value.fields
        left = pool_names(cloud, host)
        assert stray_data not in left and {owned, stray_snap, "someone-elses.img"} <= left
        assert storage.get_volume(STUDENT, volume["id"])["state"] == "available"


def test_a_recorded_volume_whose_disk_is_gone_goes_to_error(cloud, host):
    with ServiceRpcProxy("storage", cloud) as storage:
        gone = storage.create_volume(STUDENT, {"name": "gone", "size_gib": 1})
        kept = storage.create_volume(STUDENT, {"name": "kept", "size_gib": 1})
        gone_name = _volume_row(cloud, gone["id"]).name
        with ServiceRpcProxy(f"hostagent_{host}", cloud) as agent:
            agent.delete_volume({"name": gone_name})  # behind storage's back
        names = sorted(pool_names(cloud, host))
        # A listing older than the volumes' last change judges neither (they may be made since).
        before = (utcnow() - dt.timedelta(hours=1)).isoformat()
        assert storage.check_host_volumes({"host": host, "names": names, "listed_at": before})["missing_volumes"] == []
        later = (utcnow() + dt.timedelta(seconds=1)).isoformat()
        checked = storage.check_host_volumes({"host": host, "names": names, "listed_at": later})
        assert checked["missing_volumes"] == [gone["id"]]
        shown = storage.get_volume(STUDENT, gone["id"])
        assert shown["state"] == "error" and shown["reason"] == f"its disk is missing on host {host}"
        assert storage.get_volume(STUDENT, kept["id"])["state"] == "available"
        # Asked again (at least once delivery): nothing more.
        assert storage.check_host_volumes({"host": host, "names": names, "listed_at": later})["missing_volumes"] == []
        # The volume in error can be deleted (the host has nothing of it any more).
        storage.delete_volume(STUDENT, gone["id"])
