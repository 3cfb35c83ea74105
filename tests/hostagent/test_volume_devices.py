"""Data volumes as disks of a domain (hostagent/volume_devices.py): the agent's attach_disk,
detach_disk and clone_volume on libvirt's test driver, and the flags a real host gets (a domain
double standing in for libvirt's, which has no hot-plug on the test driver). The hot-plug itself
is proven on real guests: tests/realguest/test_volumes_real.py."""
import uuid

import libvirt
import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from common.errors import Conflict, HostOperationFailed, NotFound
from hostagent import migration, volume_devices
from hostagent.service import make_service
from tests.hostagent.test_hostagent_service import spec


@pytest.fixture
def agent_config(service_config):
    pool = f"vd-{uuid.uuid4().hex[:8]}"
    return service_config(LIBVIRT_URI="test:///default", POOL_NAME=pool, POOL_PATH=f"/labcloud-test/{pool}",
                          HEARTBEAT_INTERVAL=60, STATS_INTERVAL=60, HOST=f"vd-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def agent(container_factory, agent_config):
    """A host agent on the test driver, its queue named after the test's own host."""
    container = container_factory(make_service(agent_config["HOST"]), agent_config)
    container.start()
    return f"hostagent_{agent_config['HOST']}"


def test_attach_and_detach_change_the_definition_and_are_idempotent(agent, agent_config, conn):
    instance_id = str(uuid.uuid4())
    with ServiceRpcProxy(agent, agent_config) as host:
        host.create_domain(spec(instance_id, "/labcloud-test/root.qcow2"))
        request = {"instance_id": instance_id, "path": "/labcloud-test/data-1.qcow2", "device": "vdb"}
        assert host.attach_disk(request) == {"device": "vdb", "live": False}  # test driver: CONFIG only
        assert host.attach_disk(request) == {"device": "vdb", "live": False}
        assert host.list_domain_disks({"instance_id": instance_id})["disks"] == {
            "vda": "/labcloud-test/root.qcow2", "vdb": "/labcloud-test/data-1.qcow2"}
        # A guest with a data volume does not migrate: the volume lives in this host's pool.
        with pytest.raises(Conflict) as refused:
            migration.migrate(conn, instance_id, {"disk_path": "/elsewhere/root.qcow2"}, test_driver=True)
        assert refused.value.fields == {"volumes": ["vdb"]}
        # Another file on a taken device, or the file on another device: refused, nothing changes.
        with pytest.raises(HostOperationFailed, match="vdb holds"):
            host.attach_disk({**request, "path": "/labcloud-test/data-2.qcow2"})
        with pytest.raises(HostOperationFailed, match="attached as vdb"):
            host.attach_disk({**request, "device": "vdc"})
        assert host.detach_disk({"instance_id": instance_id, "device": "vdb"}) == {
            "device": "vdb", "detached": True}
        assert host.detach_disk({"instance_id": instance_id, "device": "vdb"}) == {
            "device": "vdb", "detached": False}
        assert host.list_domain_disks({"instance_id": instance_id})["disks"] == {"vda": "/labcloud-test/root.qcow2"}
        assert migration.migrate(conn, instance_id, {"disk_path": "/elsewhere/root.qcow2"}, test_driver=True)["moved"]
        # The domain keeps running through it all.
        assert conn.lookupByUUIDString(instance_id).isActive()
        host.destroy_domain({"instance_id": instance_id})
        # Gone: nothing to attach to, nothing to detach.
        with pytest.raises(NotFound):
            host.attach_disk(request)
        assert host.detach_disk({"instance_id": instance_id, "device": "vdb"})["detached"] is False


def test_bad_devices_name_the_field(agent, agent_config):
    with ServiceRpcProxy(agent, agent_config) as host:
        with pytest.raises(Exception) as raised:
            host.attach_disk({"instance_id": str(uuid.uuid4()), "path": "/x", "device": "vda"})
        assert "device" in raised.value.fields


def test_clone_copies_a_volume_once(agent, agent_config):
    with ServiceRpcProxy(agent, agent_config) as host:
        source = host.create_volume({"name": "data-src.qcow2", "capacity_bytes": 1 << 30})
        copy = host.clone_volume({"name": "snap-1.qcow2", "source": "data-src.qcow2"})
        assert copy["capacity_bytes"] == source["capacity_bytes"] and copy["path"] != source["path"]
        assert host.clone_volume({"name": "snap-1.qcow2", "source": "data-src.qcow2"}) == copy
        larger = host.clone_volume({"name": "data-2.qcow2", "source": "snap-1.qcow2", "capacity_bytes": 2 << 30})
        assert larger["capacity_bytes"] == 2 << 30
        with pytest.raises(NotFound):
            host.clone_volume({"name": "snap-2.qcow2", "source": "nothing.qcow2"})
        # The pool reports what its volumes take (the test driver counts their full sizes).
        usage = host.get_pool_usage()
        assert (usage["host"], usage["pool"], usage["capacity_bytes"]) == (
            agent_config["HOST"], agent_config["POOL_NAME"], 100 << 30)
        assert usage["allocation_bytes"] == 4 << 30 and usage["available_bytes"] == 96 << 30
        for name in ("data-src.qcow2", "snap-1.qcow2", "data-2.qcow2"):
            assert host.delete_volume({"name": name}) == {"deleted": True}


class RealDomainDouble:
    """What a running domain on a real host does with attach/detach: each flag changes its own
    view; an unplug takes the guest a moment (the live view keeps the disk for `unplug_polls`)."""

    def __init__(self, running=True, unplug_polls=2):
        base = "<domain><devices><disk type='file' device='disk'><source file='/r.qcow2'/>" \
               "<target dev='vda' bus='virtio'/></disk></devices></domain>"
        self.views = {volume_devices.LIVE: base, volume_devices.CONFIG: base}
        self.running, self.unplug_polls, self.calls = running, unplug_polls, []

    def isActive(self):
        return self.running

    def XMLDesc(self, flags):
        return self.views[volume_devices.CONFIG if flags & libvirt.VIR_DOMAIN_XML_INACTIVE else volume_devices.LIVE]

    def attachDeviceFlags(self, xml, flag):
        self.calls.append(("attach", flag))
        self.views[flag] = self.views[flag].replace("</devices>", xml + "</devices>")

    def detachDeviceFlags(self, xml, flag):
        self.calls.append(("detach", flag))
        self._pending = (flag, xml)
        if flag == volume_devices.CONFIG or self.unplug_polls == 0:
            self._unplug(flag, xml)

    def _unplug(self, flag, xml):
        import xml.etree.ElementTree as ET
        root = ET.fromstring(self.views[flag])
        devices = root.find("devices")
        for disk in devices.findall("disk"):
            if disk.find("target").get("dev") == ET.fromstring(xml).find("target").get("dev"):
                devices.remove(disk)
        self.views[flag] = ET.tostring(root, encoding="unicode")

    def poll(self):
        if self.unplug_polls and getattr(self, "_pending", None):
            self.unplug_polls -= 1
            if self.unplug_polls == 0:
                self._unplug(*self._pending)


@pytest.fixture
def double(monkeypatch):
    made = {}

    def find(_conn, _instance_id):
        return made["domain"]
    monkeypatch.setattr(volume_devices.domains, "require_domain", find)
    monkeypatch.setattr(volume_devices.domains, "find_domain", find)
    real_sleep = volume_devices.time.sleep
    monkeypatch.setattr(volume_devices.time, "sleep", lambda s: (made["domain"].poll(), real_sleep(0)))
    return made


def test_a_running_domain_gets_the_disk_live_and_in_its_definition(double):
    double["domain"] = domain = RealDomainDouble()
    assert volume_devices.attach(None, "i", "/d.qcow2", "vdb") == {"device": "vdb", "live": True}
    assert domain.calls == [("attach", volume_devices.LIVE), ("attach", volume_devices.CONFIG)]
    # A retry after the live attach alone (the agent died between the two) adds only the definition's.
    domain.views[volume_devices.CONFIG] = RealDomainDouble().views[volume_devices.CONFIG]
    domain.calls.clear()
    volume_devices.attach(None, "i", "/d.qcow2", "vdb")
    assert domain.calls == [("attach", volume_devices.CONFIG)]
    # Detach: the definition first, then the live view, waiting until the guest let it go.
    domain.calls.clear()
    assert volume_devices.detach(None, "i", "vdb", "/d.qcow2") == {"device": "vdb", "detached": True}
    assert domain.calls == [("detach", volume_devices.CONFIG), ("detach", volume_devices.LIVE)]
    assert "vdb" not in volume_devices.disks_of(domain.XMLDesc(0))


def test_a_stopped_domain_gets_the_disk_in_its_definition_only(double):
    double["domain"] = domain = RealDomainDouble(running=False)
    assert volume_devices.attach(None, "i", "/d.qcow2", "vdc") == {"device": "vdc", "live": False}
    assert domain.calls == [("attach", volume_devices.CONFIG)]


def test_a_guest_that_keeps_the_disk_fails_the_detach(double):
    double["domain"] = domain = RealDomainDouble(unplug_polls=10 ** 9)
    volume_devices.attach(None, "i", "/d.qcow2", "vdb")
    with pytest.raises(HostOperationFailed, match="did not release vdb"):
        volume_devices.detach(None, "i", "vdb", wait_s=0.05)
    # The definition no longer has it: the next start will not bring it back.
    assert "vdb" not in volume_devices.disks_of(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
