"""The host agent over the real RabbitMQ node, driving libvirt's test:///default driver."""
import os
import uuid
import xml.etree.ElementTree as ET

import libvirt

import pytest
from nameko.events import event_handler
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter

from common.errors import InvalidInput, NotFound
from hostagent.service import make_service
from tests.hostagent.payloads import without_seq


LIFECYCLE_SEEN = []  # every domain_lifecycle payload the listener got, in order


class HostEventListener:
    """Stands in for the instances and metrics services: events come from source 'hostagent'."""
    name = "hostagent_test_listener"

    @event_handler("hostagent", "host_heartbeat")
    def heartbeat(self, payload):
        return payload

    @event_handler("hostagent", "domain_stats")
    def stats(self, payload):
        return payload

    @event_handler("hostagent", "domain_lifecycle")
    def lifecycle(self, payload):
        LIFECYCLE_SEEN.append(payload)
        return payload


@pytest.fixture
def agent_config(service_config, tmp_path):
    pool = f"svc-{uuid.uuid4().hex[:8]}"
    return service_config(LIBVIRT_URI="test:///default", POOL_NAME=pool, POOL_PATH=f"/labcloud-test/{pool}",
                          HEARTBEAT_INTERVAL=0.3, STATS_INTERVAL=0.3, CONSOLE_DIR=str(tmp_path / "console"))


@pytest.fixture
def listener(container_factory, agent_config):
    container = container_factory(HostEventListener, agent_config)
    container.start()
    return container


@pytest.fixture
def agent(container_factory, agent_config, listener):
    container = container_factory(make_service("t1"), agent_config)
    with entrypoint_waiter(listener, "heartbeat", timeout=10,
                           callback=lambda _ctx, result, _exc: result["host"] == "t1") as first:
        container.start()  # the first heartbeat goes out at start, not after one interval
    assert first.get()["hypervisor"] == "TEST"
    return container


def spec(instance_id, disk_path):
    return {"instance_id": instance_id, "name": f"vm-{instance_id[:8]}", "vcpus": 1, "memory_mib": 128,
            "cpu_weight": 1024, "cpu_cap": 50, "disk_path": disk_path,
            "mac": "aa:00:0a:63:00:02", "ip": "10.99.0.2"}


def test_volumes_and_domain_lifecycle(agent, agent_config):
    instance_id = str(uuid.uuid4())
    with ServiceRpcProxy("hostagent_t1", agent_config) as host:
        info = host.get_host_info()
        assert info == {"host": "t1", "hypervisor": "TEST", "uri": "test:///default", "vcpus": 16,
                        "memory_mib": 3072, "pool": agent_config["POOL_NAME"],
                        "pool_path": agent_config["POOL_PATH"], "pool_kind": "dir", "disk_format": "qcow2"}

        image = host.ensure_image({"image_id": 1, "format": "qcow2", "capacity_bytes": 64 << 20,
                                   "source_path": "/nonexistent/tiny.qcow2"})
        assert image["name"] == "image-1.qcow2" and image["capacity_bytes"] == 64 << 20
        request = {"name": f"root-{instance_id}.qcow2", "capacity_bytes": 1 << 30, "format": "qcow2",
                   "backing_path": image["path"]}
        root = host.create_volume(request)
        assert host.create_volume(request) == root
        assert root["path"] == f"{agent_config['POOL_PATH']}/root-{instance_id}.qcow2"

        created = host.create_domain(spec(instance_id, root["path"]))
        # No HOST_NETNS on the test driver: nothing to forward SSH into.
        assert without_seq(created) == {"instance_id": instance_id, "state": "running", "ssh_port": None}
        again = host.create_domain(spec(instance_id, root["path"]))
        assert without_seq(again) == without_seq(created) and again["seq"] > created["seq"]
        [listed] = host.list_domains()  # the driver's own 'test' domain is not ours
        assert without_seq(listed) == without_seq(created) and listed["seq"] > again["seq"]

        assert host.destroy_domain({"instance_id": instance_id}) == {"deleted": True}
        assert host.destroy_domain({"instance_id": instance_id}) == {"deleted": False}
        assert host.list_domains() == []
        assert host.delete_volume({"name": root["name"]}) == {"deleted": True}
        assert host.delete_volume({"name": root["name"]}) == {"deleted": False}
        assert host.delete_volume({"name": image["name"]}) == {"deleted": True}


def test_stopped_domain_is_started_again(agent, agent_config, conn):
    instance_id = str(uuid.uuid4())
    with ServiceRpcProxy("hostagent_t1", agent_config) as host:
        host.create_domain(spec(instance_id, "/labcloud-test/x.qcow2"))
        # The test driver's state is per process: this connection sees the agent's domain.
        conn.lookupByUUIDString(instance_id).destroy()
        assert [without_seq(d) for d in host.list_domains()] == [
            {"instance_id": instance_id, "state": "shutoff", "ssh_port": None}]
        assert host.create_domain(spec(instance_id, "/labcloud-test/x.qcow2"))["state"] == "running"
        assert host.destroy_domain({"instance_id": instance_id}) == {"deleted": True}


def test_events_come_from_source_hostagent(agent, agent_config, listener):
    instance_id = str(uuid.uuid4())
    with ServiceRpcProxy("hostagent_t1", agent_config) as host:
        host.create_domain(spec(instance_id, "/labcloud-test/y.qcow2"))
        try:
            with entrypoint_waiter(listener, "heartbeat", timeout=10,
                                   callback=lambda _c, r, _e: r["domains"] == 1) as beat:
                pass
            assert beat.get()["host"] == "t1" and beat.get()["vcpus"] == 16
            with entrypoint_waiter(listener, "stats", timeout=10,
                                   callback=lambda _c, r, _e: len(r["domains"]) == 1) as sampled:
                pass
            sample = sampled.get()["domains"][0]
            assert sample["instance_id"] == instance_id and sample["state"] == "running"
            assert sample["cpu_time_ns"] > 0 and sample["disk_read_bytes"] > 0
            assert sample["disks"][0]["device"] and len(sample["vcpu_time_ns"]) == sample["vcpus"]
            host_sample = sampled.get()["host_sample"]
            assert len(host_sample["cpu_busy_ns"]) == 16 and host_sample["memory_total_kib"] > 0
        finally:
            host.destroy_domain({"instance_id": instance_id})


def test_bad_request_names_the_field(agent, agent_config):
    with ServiceRpcProxy("hostagent_t1", agent_config) as host:
        with pytest.raises(InvalidInput) as err:
            host.create_domain({**spec(str(uuid.uuid4()), "/x.qcow2"), "vcpus": 0, "colour": "red"})
    assert set(err.value.fields) == {"vcpus", "colour"}


def lifecycle_of(instance_id, state):
    return lambda _ctx, result, _exc: result["instance_id"] == instance_id and result["state"] == state


def test_stop_start_reboot_are_idempotent_and_emit_lifecycle_events(agent, agent_config, listener):
    instance_id = str(uuid.uuid4())
    with ServiceRpcProxy("hostagent_t1", agent_config) as host:
        with entrypoint_waiter(listener, "lifecycle", timeout=10,
                               callback=lifecycle_of(instance_id, "running")) as started:
            host.create_domain(spec(instance_id, "/labcloud-test/z.qcow2"))
        event = started.get()
        assert event["host"] == "t1" and event["at"]
        try:
            with entrypoint_waiter(listener, "lifecycle", timeout=10,
                                   callback=lifecycle_of(instance_id, "shutoff")):
                stopped = host.stop_domain({"instance_id": instance_id, "timeout": 5})
            assert without_seq(stopped) == {"instance_id": instance_id, "state": "shutoff", "ssh_port": None}
            assert without_seq(host.stop_domain({"instance_id": instance_id})) == without_seq(stopped)

            with entrypoint_waiter(listener, "lifecycle", timeout=10,
                                   callback=lifecycle_of(instance_id, "running")):
                assert host.start_domain({"instance_id": instance_id})["state"] == "running"
            assert host.start_domain({"instance_id": instance_id})["state"] == "running"

            # The test driver's reboot changes nothing a guest would: no reboot or lifecycle event
            # comes, so after the timeout the agent destroys and starts the domain.
            with entrypoint_waiter(listener, "lifecycle", timeout=10,
                                   callback=lifecycle_of(instance_id, "shutoff")):
                assert host.reboot_domain({"instance_id": instance_id, "timeout": 0.5})["state"] == "running"
            assert host.list_domains()[0]["state"] == "running"
            # A stopped domain is simply started by a reboot.
            host.stop_domain({"instance_id": instance_id, "timeout": 0})
            assert host.reboot_domain({"instance_id": instance_id})["state"] == "running"
        finally:
            host.destroy_domain({"instance_id": instance_id})


def test_lifecycle_of_domains_that_are_not_labcloud_is_not_reported(agent, agent_config, listener, conn):
    instance_id = str(uuid.uuid4())
    foreign = conn.lookupByName("test")  # the driver's own sample domain
    with ServiceRpcProxy("hostagent_t1", agent_config) as host:
        host.create_domain(spec(instance_id, "/labcloud-test/f.qcow2"))
        try:
            # Events are handled in order: once ours is seen, the foreign one before it was skipped.
            with entrypoint_waiter(listener, "lifecycle", timeout=10,
                                   callback=lifecycle_of(instance_id, "shutoff")) as ours:
                foreign.destroy()
                foreign.create()
                host.stop_domain({"instance_id": instance_id})
            assert ours.get()["instance_id"] == instance_id
            assert instance_id in {seen["instance_id"] for seen in LIFECYCLE_SEEN}
            assert foreign.UUIDString() not in {seen["instance_id"] for seen in LIFECYCLE_SEEN}
        finally:
            host.destroy_domain({"instance_id": instance_id})


def test_missing_domain_is_not_found(agent, agent_config):
    with ServiceRpcProxy("hostagent_t1", agent_config) as host:
        for method in ("stop_domain", "start_domain", "reboot_domain"):
            with pytest.raises(NotFound):
                getattr(host, method)({"instance_id": str(uuid.uuid4())})


def test_console_output_is_the_tail_of_the_log(agent, agent_config):
    instance_id = str(uuid.uuid4())
    with ServiceRpcProxy("hostagent_t1", agent_config) as host:
        host.create_domain(spec(instance_id, "/labcloud-test/c.qcow2"))
        assert host.get_console({"instance_id": instance_id}) == {"output": ""}
        # The test driver has no serial port: write what QEMU would have written.
        log_path = os.path.join(agent_config["CONSOLE_DIR"], f"{instance_id}.log")
        os.makedirs(agent_config["CONSOLE_DIR"], exist_ok=True)
        with open(log_path, "w") as log:
            log.write("Linux version 6.1\n" + "x" * 100 + "\nweb-1 login: ")
        assert host.get_console({"instance_id": instance_id, "max_bytes": 13}) == {"output": "web-1 login: "}
        assert host.get_console({"instance_id": instance_id})["output"].startswith("Linux version")
        with pytest.raises(InvalidInput):
            host.get_console({"instance_id": instance_id, "max_bytes": 0})
        host.destroy_domain({"instance_id": instance_id})
        assert not os.path.exists(log_path)  # delete leaves no console log behind
        assert host.get_console({"instance_id": instance_id}) == {"output": ""}


def test_lifecycle_events_and_domain_states_are_ordered_by_seq(agent, agent_config, listener):
    """seq of an event is taken in libvirt's callback; seq of a state right after libvirt was read:
    so events carry increasing seqs in the order libvirt reported them, and a state read after an
    event was captured carries a higher seq than that event."""
    instance_id = str(uuid.uuid4())
    with ServiceRpcProxy("hostagent_t1", agent_config) as host:
        try:
            with entrypoint_waiter(listener, "lifecycle", timeout=10,
                                   callback=lifecycle_of(instance_id, "running")) as started:
                created = host.create_domain(spec(instance_id, "/labcloud-test/s.qcow2"))
            with entrypoint_waiter(listener, "lifecycle", timeout=10,
                                   callback=lifecycle_of(instance_id, "shutoff")) as stopped:
                host.stop_domain({"instance_id": instance_id, "timeout": 0})
            with entrypoint_waiter(listener, "lifecycle", timeout=10,
                                   callback=lifecycle_of(instance_id, "running")) as restarted:
                host.start_domain({"instance_id": instance_id})
            seqs = [started.get()["seq"], stopped.get()["seq"], restarted.get()["seq"]]
            assert all(isinstance(seq, int) for seq in seqs) and seqs == sorted(set(seqs))
            assert created["seq"] < seqs[1]  # read before the stop happened
            # Every event above was captured before this read.
            [listed] = host.list_domains()
            assert listed["state"] == "running" and listed["seq"] > seqs[-1]
            ours = [seen["seq"] for seen in LIFECYCLE_SEEN if seen["instance_id"] == instance_id]
            assert ours == sorted(ours)  # delivered in the order libvirt reported them
        finally:
            host.destroy_domain({"instance_id": instance_id})


def test_inventory_lists_what_the_host_holds(agent, agent_config):
    instance_id = str(uuid.uuid4())
    with ServiceRpcProxy("hostagent_t1", agent_config) as host:
        empty = host.get_inventory()
        assert empty["domains"] == [] and empty["volumes"] == [] and empty["console_logs"] == []
        image = host.ensure_image({"image_id": 3, "capacity_bytes": 64 << 20})
        root = host.create_volume({"name": f"root-{instance_id}.qcow2", "capacity_bytes": 1 << 30,
                                   "backing_path": image["path"]})
        created = host.create_domain(spec(instance_id, root["path"]))
        os.makedirs(agent_config["CONSOLE_DIR"], exist_ok=True)
        for name in (f"{instance_id}.log", "notes.txt"):  # only <instance id>.log files count
            open(os.path.join(agent_config["CONSOLE_DIR"], name), "w").close()
        try:
            inventory = host.get_inventory()
            assert [without_seq(state) for state in inventory["domains"]] == [without_seq(created)]
            assert sorted(inventory["volumes"], key=lambda v: v["name"]) == [image, root]
            # The test driver: no DHCP entries, no namespace to forward SSH into.
            assert inventory["dhcp_entries"] == [] and inventory["forwards"] == []
            assert inventory["console_logs"] == [instance_id]
            assert inventory["host"] == "t1"
            # The inventory's seq comes before its reads (what it lacks is as of then); each domain's
            # state carries the seq of its own read.
            assert inventory["domains"][0]["seq"] > inventory["seq"] > created["seq"] > empty["seq"]
        finally:
            host.destroy_domain({"instance_id": instance_id})
            host.delete_volume({"name": root["name"]})
            host.delete_volume({"name": image["name"]})
        assert host.get_inventory()["console_logs"] == []


def test_destroy_cleans_up_after_a_domain_that_is_gone_or_never_was(agent, agent_config, conn):
    lost, never = str(uuid.uuid4()), str(uuid.uuid4())
    with ServiceRpcProxy("hostagent_t1", agent_config) as host:
        host.create_domain(spec(lost, "/labcloud-test/lost.qcow2"))
        os.makedirs(agent_config["CONSOLE_DIR"], exist_ok=True)
        for instance_id in (lost, never):
            open(os.path.join(agent_config["CONSOLE_DIR"], f"{instance_id}.log"), "w").close()
        domain = conn.lookupByUUIDString(lost)  # lost behind the agent's back
        domain.destroy()
        domain.undefine()
        assert host.destroy_domain({"instance_id": lost}) == {"deleted": False}
        assert host.destroy_domain({"instance_id": never}) == {"deleted": False}
        assert host.get_inventory()["console_logs"] == []


def test_concurrent_creates_of_one_image_all_succeed(container_factory, agent_config, monkeypatch):
    """Many ensure_image + create_volume pairs for one image at once, on a fresh pool (the report:
    a second create tripped over the first one's image copy). The test driver cannot upload, so
    each pool operation is slowed down here (in its native thread, as an upload would be) and the
    test checks that no two ever ran at once; tests/realguest/test_image_race.py uploads for real."""
    import time
    from eventlet import patcher
    from nameko.standalone.rpc import ClusterRpcProxy
    import eventlet
    from hostagent import storage_pool

    running, overlaps, guard = [0], [], patcher.original("threading").Lock()

    def exclusive(operation):
        def slowed(*args, **kwargs):
            with guard:
                running[0] += 1
                overlaps.append(running[0])
            try:
                time.sleep(0.02)  # a native thread: this is the upload's time
                return operation(*args, **kwargs)
            finally:
                with guard:
                    running[0] -= 1
        return slowed
    for name in ("ensure_image", "create_volume"):
        monkeypatch.setattr(storage_pool, name, exclusive(getattr(storage_pool, name)))
    container_factory(make_service("t1"), {**agent_config, "max_workers": 32}).start()
    callers = 12

    def create(index):
        with ClusterRpcProxy(agent_config, timeout=30) as cluster:
            host = cluster.hostagent_t1
            image = host.ensure_image({"image_id": 1, "capacity_bytes": 64 << 20})
            root = host.create_volume({"name": f"root-{index}.qcow2", "capacity_bytes": 1 << 30,
                                       "backing_path": image["path"]})
            return image, root
    results = list(eventlet.GreenPool(callers).imap(create, range(callers)))
    assert len({tuple(sorted(image.items())) for image, _root in results}) == 1  # one image for all
    assert len(overlaps) == 2 * callers and max(overlaps) == 1  # never two pool operations at once
    with ServiceRpcProxy("hostagent_t1", agent_config) as host:
        volumes = host.get_inventory()["volumes"]
        assert sorted(v["name"] for v in volumes) == sorted(
            ["image-1.qcow2"] + [f"root-{i}.qcow2" for i in range(callers)])
        for volume in volumes:
            host.delete_volume({"name": volume["name"]})


def shares_request(instance_id, **changes):
    return {"instance_id": instance_id, "vcpus": 2, "max_memory_mib": 256, "memory_mib": 128,
            "cpu_weight": 256, "cpu_cap": 0, "bandwidth_in_kib": 0, "bandwidth_out_kib": 0, **changes}


def test_shares_change_the_running_domain_and_its_definition(agent, agent_config, conn):
    """On the test driver: memory live and in the definition, the cputune and the bandwidth in the
    definition (it has no CPU scheduler and no taps: the real-guest tests prove those)."""
    instance_id = str(uuid.uuid4())
    with ServiceRpcProxy("hostagent_t1", agent_config) as host:
        host.create_domain({**spec(instance_id, "/labcloud-test/s.qcow2"), "vcpus": 2, "max_memory_mib": 256})
        try:
            shown = host.get_domain_shares({"instance_id": instance_id})
            assert shown == {"instance_id": instance_id, "active": True, "cpu_weight": None, "cpu_cap": None,
                             "memory_mib": 128, "max_memory_mib": 256, "bandwidth_in_kib": 0,
                             "bandwidth_out_kib": 0}
            changed = host.set_domain_shares(shares_request(instance_id, memory_mib=200, cpu_weight=512,
                                                            cpu_cap=150, bandwidth_in_kib=640))
            assert changed == {**shown, "memory_mib": 200, "bandwidth_in_kib": 640}
            assert host.set_domain_shares(shares_request(instance_id, memory_mib=200, cpu_weight=512,
                                                         cpu_cap=150, bandwidth_in_kib=640)) == changed
            domain = conn.lookupByUUIDString(instance_id)
            assert domain.info()[2] == 200 * 1024   # the balloon target, live
            definition = ET.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            assert definition.findtext("cputune/shares") == "2048"
            assert definition.findtext("cputune/global_quota") == "150000"
            assert int(definition.findtext("currentMemory")) == 200 * 1024
            # A stop and a start keep them (the definition is what the start uses).
            host.stop_domain({"instance_id": instance_id, "timeout": 0})
            host.start_domain({"instance_id": instance_id})
            assert host.get_domain_shares({"instance_id": instance_id}) == changed
            # Uncapping removes the quota from the definition.
            host.set_domain_shares(shares_request(instance_id, memory_mib=200, cpu_weight=512))
            definition = ET.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            assert definition.find("cputune/global_quota") is None
        finally:
            host.destroy_domain({"instance_id": instance_id})


def test_shares_beyond_the_domains_size_name_the_field(agent, agent_config):
    with ServiceRpcProxy("hostagent_t1", agent_config) as host:
        for changes, field in (({"cpu_cap": 201}, "cpu_cap"), ({"memory_mib": 512}, "memory_mib"),
                               ({"cpu_weight": 0}, "cpu_weight")):
            with pytest.raises(InvalidInput) as err:
                host.set_domain_shares(shares_request(str(uuid.uuid4()), **changes))
            assert set(err.value.fields) == {field}
        with pytest.raises(NotFound):
            host.set_domain_shares(shares_request(str(uuid.uuid4())))


def test_heartbeats_report_the_storage_pools_size_once_it_exists(agent, agent_config, listener, conn):
    with ServiceRpcProxy("hostagent_t1", agent_config) as host:
        host.get_host_info()   # defines the pool
    with entrypoint_waiter(listener, "heartbeat", timeout=10,
                           callback=lambda _c, r, _e: r["host"] == "t1" and r["disk_gib"] is not None) as beat:
        pass
    size = conn.storagePoolLookupByName(agent_config["POOL_NAME"]).info()[1] // (1 << 30)
    assert beat.get()["disk_gib"] == size


def test_a_resize_grows_the_volume_and_changes_the_definitions_size(agent, agent_config, conn):
    instance_id = str(uuid.uuid4())
    with ServiceRpcProxy("hostagent_t1", agent_config) as host:
        volume = host.create_volume({"name": f"root-{instance_id}.qcow2", "capacity_bytes": 1 << 30})
        grown = host.grow_volume({"name": volume["name"], "capacity_bytes": 4 << 30})
        assert grown["capacity_bytes"] == 4 << 30 and grown["path"] == volume["path"]
        assert host.grow_volume({"name": volume["name"], "capacity_bytes": 1 << 30}) == grown  # never shrinks
        with pytest.raises(NotFound):
            host.grow_volume({"name": "root-missing.qcow2", "capacity_bytes": 1 << 30})
        host.create_domain({**spec(instance_id, volume["path"]), "max_memory_mib": 256})
        try:
            host.stop_domain({"instance_id": instance_id, "timeout": 0})
            host.set_domain_shares(shares_request(instance_id, vcpus=2, max_memory_mib=1024, memory_mib=512))
            definition = ET.fromstring(conn.lookupByUUIDString(instance_id).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            assert definition.findtext("vcpu") == "2"
            assert int(definition.findtext("memory")) == 1024 * 1024
            assert int(definition.findtext("currentMemory")) == 512 * 1024
        finally:
            host.destroy_domain({"instance_id": instance_id})
            host.delete_volume({"name": volume["name"]})
