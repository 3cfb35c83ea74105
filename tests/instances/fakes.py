"""Shared by the instances unit tests: fixed times and actors, and FakeCloud, in-memory stand-ins
for network, storage and a host that hold real state so tests can check for leaks."""
import datetime as dt

from common.errors import HostOperationFailed
from services.instances import lifecycle, saga

NOW = dt.datetime(2026, 11, 21, 12, 0, 0)
POLICY = {"memory_overcommit": 1.0, "cpu_overcommit": 4.0, "host_stale_after": 30}
ACTOR = {"id": 7, "username": "ada", "role": "user"}
KEY = {"id": 3, "public_key": "ssh-ed25519 AAAA test"}


class FakeCloud:
    """Network, storage and one host, holding real state so tests can check for leaks."""

    def __init__(self, fail_on=None):
        self.addresses, self.disks, self.domains = {}, {}, {}
        self.fail_on = fail_on
        outer = self

        class Network:
            def allocate_address(self, req):
                outer._maybe_fail("allocate_address")
                return outer.addresses.setdefault(req["owner"], {"ip": f"10.99.0.{len(outer.addresses) + 2}",
                                                                 "mac": "aa:00:0a:63:00:02",
                                                                 "gateway": "10.99.0.1", "prefixlen": 22})

            def release_address(self, req):
                return {"released": outer.addresses.pop(req["owner"], None) is not None}

        class Storage:
            def create_root_disk(self, req):
                outer._maybe_fail("create_root_disk")
                return outer.disks.setdefault(req["instance_id"], {"id": len(outer.disks) + 1,
                                                                   "path": f"/pool/root-{req['instance_id']}"})

            def get_boot_files(self, image_id):
                return {"kernel": "/images/tiny/vmlinux", "initrd": "/images/tiny/initrd.img",
                        "cmdline": "console=ttyS0"}

            def delete_root_disk(self, req):
                return {"deleted": outer.disks.pop(req["instance_id"], None) is not None}

        class Host:
            def create_domain(self, spec):
                outer._maybe_fail("create_domain")
                outer.domains[spec["instance_id"]] = spec
                return {"instance_id": spec["instance_id"], "state": "running", "ssh_port": 22001}

            def destroy_domain(self, req):
                return {"deleted": outer.domains.pop(req["instance_id"], None) is not None}

        self.peers = saga.Collaborators(network=Network(), storage=Storage(), hosts=lambda host: Host())

    def _maybe_fail(self, step):
        if self.fail_on == step:
            raise HostOperationFailed(f"{step} exploded")

    def empty(self):
        return not (self.addresses or self.disks or self.domains)


def new_instance(session, name="vm1", flavor_name="small"):
    flavor = next(f for f in lifecycle.list_flavors(session) if f.name == flavor_name)
    return lifecycle.record_instance(session, ACTOR, {"name": name, "image": 1, "user_data": None},
                                     flavor, KEY)
