"""Shared by the instances unit tests: fixed times, actors and quota limits, and FakeCloud,
in-memory stand-ins for network, storage and hosts that hold real state so tests can check for
leaks."""
import datetime as dt
import itertools

from common.errors import HostOperationFailed, NotFound
from services.instances import lifecycle, saga

NOW = dt.datetime(2026, 11, 21, 12, 0, 0)
POLICY = {"memory_overcommit": 1.0, "cpu_overcommit": 4.0, "host_stale_after": 30}
PROJECT, OTHER_PROJECT = 30, 31
ACTOR = {"id": 7, "username": "ada", "role": "user", "projects": [{"id": PROJECT, "role": "member"}]}
CLASSMATE = {"id": 8, "username": "bob", "role": "user", "projects": [{"id": PROJECT, "role": "member"}]}
TEACHER = {"id": 20, "username": "grace", "role": "user", "projects": [{"id": PROJECT, "role": "manager"}]}
OTHER_STUDENT = {"id": 9, "username": "carl", "role": "user", "projects": [{"id": OTHER_PROJECT, "role": "member"}]}
OTHER_TEACHER = {"id": 21, "username": "hedy", "role": "user",
                 "projects": [{"id": OTHER_PROJECT, "role": "manager"}]}
ADMIN = {"id": 1, "username": "admin", "role": "admin", "projects": []}
KEY = {"id": 3, "public_key": "ssh-ed25519 AAAA test"}
UNLIMITED = {"project": {}, "user": {}}


def limits_of(limits=UNLIMITED):
    """Stands in for accounts.get_quota_limits(project_id, user_id)."""
    return lambda project_id, user_id: limits


class FakeCloud:
    """Network, storage and hosts holding real state (addresses, disks, domains with power states,
    host-side leftovers), numbering host reports like a host agent does."""

    def __init__(self, fail_on=None):
        self.addresses, self.disks, self.domains = {}, {}, {}
        self.placements = {}     # owner -> (host, moving_to) as the migration told the network
        self.leftovers = set()   # instance ids with a DHCP entry / forward / console log but no domain
        # Data volumes, snapshots and image copies in the pool: name -> owned by a storage record
        # (True), not (False), or "late": unowned when checked, owned when its removal is asked.
        self.storage_volumes = {"image-1.qcow2": True}
        self.missing_volumes = []  # ids storage finds missing on the host (check_host_volumes)
        self.fail_on = fail_on
        self.image = {}          # what get_image adds to the image (min_disk_gib, min_memory_mib)
        self.calls = []
        self._seq = itertools.count(1000)
        outer = self

        class Network:
            def allocate_address(self, req):
                outer._maybe_fail("allocate_address")
                return outer.addresses.setdefault(req["owner"], {
                    "owner": req["owner"], "ip": f"10.99.0.{len(outer.addresses) + 2}",
                    "mac": "aa:00:0a:63:00:02", "gateway": "10.99.0.1", "prefixlen": 22})

            def release_address(self, req):
                outer.placements.pop(req["owner"], None)
                return {"released": outer.addresses.pop(req["owner"], None) is not None}

            def place_address(self, req):
                outer._maybe_fail("place_address")
                outer.placements[req["owner"]] = (req["host"], req.get("moving_to"))
                return {"placed": req["owner"] in outer.addresses}

            def list_addresses(self):
                return list(outer.addresses.values())

        class Storage:
            def get_image(self, image_id):
                return dict({"id": image_id, "name": "tiny", "min_disk_gib": 1}, **outer.image)

            def create_root_disk(self, req):
                outer._maybe_fail("create_root_disk")
                return outer.disks.setdefault(req["instance_id"], {
                    "id": len(outer.disks) + 1, "path": f"/pool/root-{req['instance_id']}",
                    "boot": {"kernel": "/images/tiny/vmlinux", "initrd": "/images/tiny/initrd.img",
                             "cmdline": "console=ttyS0"}})

            def grow_root_disk(self, req):
                outer._maybe_fail("grow_root_disk")
                disk = outer.disks[req["instance_id"]]
                disk["size_gib"] = max(disk.get("size_gib", 0), req["size_gib"])
                return dict(disk)

            def delete_root_disk(self, req):
                outer._maybe_fail("delete_root_disk")
                return {"deleted": outer.disks.pop(req["instance_id"], None) is not None}

            def release_instance_volumes(self, req):
                outer._maybe_fail("release_instance_volumes")
                outer.calls.append(("release_instance_volumes", req["instance_id"]))
                return {"released": 0}

            def check_host_volumes(self, req):
                outer.calls.append(("check_host_volumes", tuple(req["names"])))
                return {"unowned": sorted(n for n in req["names"] if outer.storage_volumes.get(n, True) is not True),
                        "missing_volumes": outer.missing_volumes}

            def delete_unowned_volume(self, req):
                outer.calls.append(("delete_unowned_volume", req["name"]))
                if outer.storage_volumes.get(req["name"]) in (True, "late"):
                    return {"deleted": False, "owned": True}
                return {"deleted": outer.storage_volumes.pop(req["name"], None) is not None, "owned": False}

            def delete_orphan_volume(self, req):
                instance_id = req["name"][len("root-"):-len(".qcow2")]
                outer.calls.append(("delete_orphan_volume", req["name"]))
                return {"deleted": outer.disks.pop(instance_id, None) is not None}

        class Host:
            def create_domain(self, spec):
                outer._maybe_fail("create_domain")
                outer.domains[spec["instance_id"]] = dict(spec, state="running")
                return outer.report(spec["instance_id"], ssh_port=22001)

            def destroy_domain(self, req):
                outer._maybe_fail("destroy_domain")
                outer.calls.append(("destroy_domain", req["instance_id"]))
                outer.leftovers.discard(req["instance_id"])
                return {"deleted": outer.domains.pop(req["instance_id"], None) is not None}

            def stop_domain(self, req):
                return outer.set_power(req["instance_id"], "shutoff", "stop_domain")

            def start_domain(self, req):
                return outer.set_power(req["instance_id"], "running", "start_domain")

            def reboot_domain(self, req):
                return outer.set_power(req["instance_id"], "running", "reboot_domain")

            def set_domain_shares(self, req):
                outer._maybe_fail("set_domain_shares")
                outer.calls.append(("set_domain_shares", req["instance_id"]))
                outer.domains[req["instance_id"]].update(req)
                return dict(req, active=outer.domains[req["instance_id"]]["state"] == "running")

            def get_inventory(self):
                outer._maybe_fail("get_inventory")
                domains = [outer.report(i) for i in outer.domains]
                return {"host": "h1", "domains": domains,
                        "volumes": [{"name": f"root-{i}.qcow2", "path": d["path"], "capacity_bytes": 1,
                                     "format": "qcow2"} for i, d in outer.disks.items()]
                        + [{"name": n, "path": f"/pool/{n}", "capacity_bytes": 1, "format": "qcow2"}
                           for n in outer.storage_volumes],
                        "dhcp_entries": [{"name": "i-x", "mac": "aa:00:00:00:00:01", "ip": "10.99.0.9",
                                          "instance_id": i} for i in outer.leftovers],
                        "forwards": [], "console_logs": [], "seq": next(outer._seq)}

        self.host = Host()
        self.peers = saga.Collaborators(network=Network(), storage=Storage(), hosts=lambda host: self.host)

    def report(self, instance_id, **extra):
        """A DomainStateSchema answer, numbered after the state was read."""
        return {"instance_id": instance_id, "state": self.domains[instance_id]["state"],
                "seq": next(self._seq), "ssh_port": 22001, **extra}

    def next_seq(self):
        return next(self._seq)

    def set_power(self, instance_id, state, method):
        self._maybe_fail(method)
        if instance_id not in self.domains:
            raise NotFound(f"no domain {instance_id} on this host")
        self.domains[instance_id]["state"] = state
        return self.report(instance_id)

    def _maybe_fail(self, step):
        if self.fail_on == step:
            raise HostOperationFailed(f"{step} exploded")

    def empty(self):
        return not (self.addresses or self.disks or self.domains or self.leftovers)


def flavor_named(session, name):
    return next(f for f in lifecycle.list_flavors(session) if f.name == name)


def new_instance(session, name="vm1", flavor_name="small", actor=ACTOR, project=PROJECT, limits=UNLIMITED):
    return lifecycle.record_instance(session, actor, {"name": name, "image": 1, "user_data": None},
                                     flavor_named(session, flavor_name), KEY, project, limits)


def running_instance(session, cloud, name="vm1", flavor_name="small"):
    inst = new_instance(session, name, flavor_name)
    assert saga.run_create(session, inst.id, cloud.peers, POLICY, lambda: NOW) == "running"
    session.refresh(inst)
    return inst
