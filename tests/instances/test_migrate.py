"""The migration saga (migrate.py) on a real database with two fake hosts that hold state (domains,
network entries, disk copies): where the guest ends, what each host keeps, the allocation counters,
a lost reply, a failure, a redelivery, a delete in the middle, and the scheduler's `current` filter."""
import pytest

from common.errors import CapacityExhausted, Conflict, HostOperationFailed, InvalidInput
from services.instances import host_admin, instance_store, lifecycle, migrate, saga, scheduler
from services.instances.models import Instance
from tests.instances.fakes import ADMIN, NOW, POLICY, FakeCloud, running_instance
from tests.instances.test_scheduler import assert_counters_match, heartbeat


class TwoHosts:
    """h1 and h2: each with its domains and network entries; storage with its disk copies per host."""

    def __init__(self, cloud, fail_on=(), lose_reply=False):
        self.cloud, self.fail_on, self.lose_reply = cloud, set(fail_on), lose_reply
        self.domains = {"h1": dict(cloud.domains), "h2": {}}
        self.entries = {"h1": set(cloud.domains), "h2": set()}   # DHCP / neighbour / SSH forward
        self.copies = {"h1": set(cloud.disks), "h2": set()}      # root disk copies (top layers)
        self.kept_sessions = []
        self.calls = []
        outer = self

        class Agent:
            def __init__(self, name):
                self.name = name

            def _step(self, step):
                outer.calls.append((self.name, step))
                if (self.name, step) in outer.fail_on:
                    raise HostOperationFailed(f"{self.name}: {step} exploded")

            def prepare_incoming(self, req):
                self._step("prepare_incoming")
                outer.entries[self.name].add(req["instance_id"])
                return {"ssh_port": 22555, "console_path": "/c.log", "migration_uri": f"qemu://{self.name}",
                        "migration_address": "198.18.0.2"}

            def migrate_domain(self, req):
                self._step("migrate_domain")
                to = "h2" if self.name == "h1" else "h1"
                outer.domains[to][req["instance_id"]] = domain = outer.domains[self.name].pop(req["instance_id"])
                if outer.lose_reply:
                    raise HostOperationFailed("the reply was lost")
                return {"moved": True, "running": domain["state"] == "running", "total_ms": 2400,
                        "downtime_ms": 59, "xml": None}

            def finish_incoming(self, req):
                self._step("finish_incoming")
                if req["instance_id"] not in outer.domains[self.name]:
                    raise HostOperationFailed("not here")
                return {"instance_id": req["instance_id"], "state": outer.domains[self.name][req["instance_id"]]["state"],
                        "seq": outer.cloud.next_seq(), "ssh_port": 22555}

            def set_domain_shares(self, req):
                self._step("set_domain_shares")
                outer.domains[self.name][req["instance_id"]].update(req)
                return req

            def destroy_domain(self, req):
                self._step("destroy_domain")
                if req.get("keep_sessions"):
                    outer.kept_sessions.append(self.name)
                outer.entries[self.name].discard(req["instance_id"])
                return {"deleted": outer.domains[self.name].pop(req["instance_id"], None) is not None}

        class Storage:
            def prepare_root_disk_move(self, req):
                outer.calls.append(("storage", "prepare"))
                outer.copies[req["host"]].add(req["instance_id"])
                return {"path": f"/{req['host']}/root.qcow2", "capacity_bytes": 1}

            def complete_root_disk_move(self, req):
                outer.calls.append(("storage", "complete"))
                outer.copies[req["source"]].discard(req["instance_id"])
                return {"moved": True}

            def abort_root_disk_move(self, req):
                outer.calls.append(("storage", "abort"))
                outer.copies[req["host"]].discard(req["instance_id"])
                return {"deleted": True}

            def release_instance_volumes(self, req):
                return {"released": 0}

            def delete_root_disk(self, req):
                for copies in outer.copies.values():
                    copies.discard(req["instance_id"])
                return {"deleted": True}

        agents = {"h1": Agent("h1"), "h2": Agent("h2")}
        self.peers = saga.Collaborators(network=cloud.peers.network, storage=Storage(), hosts=agents.__getitem__)

    def holds(self, host, instance_id):
        return {what for what, found in (("domain", instance_id in self.domains[host]),
                                         ("entries", instance_id in self.entries[host]),
                                         ("disk", instance_id in self.copies[host])) if found}


@pytest.fixture
def world(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)   # on conftest's h1, the only host yet
    heartbeat(session, "h2")
    assert inst.host == "h1"
    return session, inst, cloud


def requested(session, inst, host=None):
    instance, was = migrate.request_migration(session, ADMIN, inst.id, {"host": host}, POLICY, NOW)
    assert was == "running" and instance.state == "migrating"
    return instance


def run(session, inst, hosts, live=True):
    return migrate.run_migration(session, inst.id, hosts.peers, lambda: NOW, live)


def test_the_guest_its_entries_and_its_disk_end_on_the_destination(world):
    session, inst, cloud = world
    hosts = TwoHosts(cloud)
    assert requested(session, inst).migrating_to == "h2"     # the scheduler's choice: not h1
    assert_counters_match(session)                            # counted on both hosts meanwhile
    assert run(session, inst, hosts) == "running"
    session.refresh(inst)
    assert (inst.host, inst.migrating_to, inst.ssh_port, inst.reason) == ("h2", None, 22555, None)
    assert hosts.holds("h2", inst.id) == {"domain", "entries", "disk"} and hosts.holds("h1", inst.id) == set()
    assert hosts.kept_sessions == ["h1"]                      # the source's open SSH sessions go on
    assert ("h2", "set_domain_shares") in hosts.calls         # shares set again on the destination
    assert cloud.placements[inst.id] == ("h2", None)          # its filter and NAT rules now only there
    assert_counters_match(session)
    # A redelivered event finds nothing to do.
    calls = len(hosts.calls)
    assert run(session, inst, hosts) is None and len(hosts.calls) == calls


def test_a_lost_reply_is_not_taken_for_a_failure(world):
    session, inst, cloud = world
    hosts = TwoHosts(cloud, lose_reply=True)
    requested(session, inst, "h2")
    assert run(session, inst, hosts) == "running"
    session.refresh(inst)
    assert inst.host == "h2" and hosts.holds("h1", inst.id) == set()


@pytest.mark.parametrize("failing", [("h1", "migrate_domain"), ("h2", "prepare_incoming")])
def test_a_failure_leaves_the_guest_on_the_source_and_nothing_on_the_destination(world, failing):
    session, inst, cloud = world
    hosts = TwoHosts(cloud, fail_on=[failing])
    requested(session, inst, "h2")
    assert run(session, inst, hosts) == "running"
    session.refresh(inst)
    assert (inst.host, inst.migrating_to) == ("h1", None)
    assert "exploded" in inst.reason and "stays on h1" in inst.reason
    assert hosts.holds("h2", inst.id) == set() and hosts.holds("h1", inst.id) == {"domain", "entries", "disk"}
    assert cloud.placements[inst.id] == ("h1", None)          # the destination lost its rules again
    assert_counters_match(session)


def test_a_failure_after_the_move_leaves_it_on_the_destination_in_error(world):
    session, inst, cloud = world
    hosts = TwoHosts(cloud, fail_on=[("h2", "set_domain_shares")])
    requested(session, inst, "h2")
    assert run(session, inst, hosts) == "error"
    session.refresh(inst)
    assert inst.host == "h2" and "migrated to h2, but" in inst.reason
    assert_counters_match(session)


def test_a_delete_during_the_migration_cleans_up_both_hosts(world):
    session, inst, cloud = world
    hosts = TwoHosts(cloud)
    requested(session, inst, "h2")
    # The destination got its disk and entries, then the delete came.
    hosts.peers.storage.prepare_root_disk_move({"instance_id": inst.id, "host": "h2"})
    hosts.peers.hosts("h2").prepare_incoming({"instance_id": inst.id, "ip": inst.ip, "mac": inst.mac})
    assert lifecycle.request_delete(session, ADMIN, inst.id).state == "deleting"
    assert saga.run_delete(session, inst.id, hosts.peers, lambda: NOW) == "deleted"
    assert hosts.holds("h1", inst.id) == set() and hosts.holds("h2", inst.id) == set()
    assert run(session, inst, hosts) is None   # the saga's event, redelivered after: nothing to do
    assert_counters_match(session)


def test_refusals_name_the_field(world):
    session, inst, _cloud = world
    with pytest.raises(InvalidInput) as own:
        migrate.request_migration(session, ADMIN, inst.id, {"host": "h1"}, POLICY, NOW)
    assert "host" in own.value.fields
    scheduler.set_host_state(session, "h2", "disabled")
    with pytest.raises(Conflict) as disabled:
        migrate.request_migration(session, ADMIN, inst.id, {"host": "h2"}, POLICY, NOW)
    assert disabled.value.fields == {"host": ["is disabled"]}
    with pytest.raises(CapacityExhausted) as nowhere:   # no host but its own: the `current` filter says so
        migrate.request_migration(session, ADMIN, inst.id, {}, POLICY, NOW)
    assert "current: 1" in str(nowhere.value) and "disabled: 1" in str(nowhere.value)
    assert session.get(Instance, inst.id).state == "running"
    assert_counters_match(session)


def test_a_stopped_instance_arrives_stopped_and_a_failed_cold_move_leaves_it_stopped(world):
    session, inst, cloud = world
    cloud.domains[inst.id]["state"] = "shutoff"
    assert instance_store.move(session, inst.id, "host:shutoff") == "stopped"
    hosts = TwoHosts(cloud, fail_on=[("h1", "migrate_domain")])
    instance, was = migrate.request_migration(session, ADMIN, inst.id, {"host": "h2"}, POLICY, NOW)
    assert was == "stopped"
    assert run(session, inst, hosts, live=False) == "stopped"
    session.refresh(inst)
    assert inst.host == "h1" and "stays on h1" in inst.reason and hosts.holds("h2", inst.id) == set()
    hosts = TwoHosts(cloud)
    migrate.request_migration(session, ADMIN, inst.id, {"host": "h2"}, POLICY, NOW)
    assert run(session, inst, hosts, live=False) == "stopped"
    session.refresh(inst)
    assert inst.host == "h2" and hosts.holds("h2", inst.id) == {"domain", "entries", "disk"}
    assert_counters_match(session)


def test_an_instance_on_a_routed_subnet_is_refused_before_anything_moves(world):
    """Its address is on a routed subnet of its host (the network service says so): migrate and
    drain refuse it at once, naming the host field, and nothing is claimed or changed."""
    session, inst, _cloud = world
    routed = {inst.id: "hetzner"}.get
    with pytest.raises(Conflict) as refused:
        migrate.request_migration(session, ADMIN, inst.id, {"host": "h2"}, POLICY, NOW, routed)
    assert set(refused.value.fields) == {"host"} and "routed to h1" in str(refused.value)
    assert session.get(Instance, inst.id).state == "running"
    _host, started, why_not = host_admin.drain(session, ADMIN, "h1", POLICY, NOW, routed)
    assert started == [] and "hetzner" in why_not[inst.id]
    assert session.get(Instance, inst.id).state == "running"
    assert_counters_match(session)
    # A bridged one (no routed subnet): the same call moves it.
    assert migrate.request_migration(session, ADMIN, inst.id, {"host": "h2"}, POLICY, NOW, lambda _id: None)[1] \
        == "running"
