"""A delete racing a power action on the host (test driver): destroy_domain undefines before it
stops the guest, so a start that slips in between can never bring the guest back."""
import uuid

import pytest

from common.errors import NotFound
from common.schemas import load
from hostagent import domains
from hostagent.domain_xml import build_domain_xml
from hostagent.schemas import DomainSpec


def define(conn, running):
    instance_id = str(uuid.uuid4())
    spec = load(DomainSpec, {"instance_id": instance_id, "name": f"lc-{instance_id}", "vcpus": 1,
                             "memory_mib": 64, "cpu_weight": 256, "cpu_cap": 0,
                             "disk_path": "/labcloud-test/none.qcow2", "mac": "aa:00:0a:63:07:01",
                             "ip": "10.99.7.1"})
    domains.create_domain(conn, instance_id, build_domain_xml(spec, {}, "test:///default"))
    if not running:
        domains.power_off(conn, instance_id)
    return instance_id


class StartsInBetween:
    """The connection as destroy_domain sees it; right after its first step (undefine or destroy),
    a reboot in flight tries to start the guest again (through the real connection)."""

    def __init__(self, conn, instance_id):
        self.conn, self.instance_id, self.start_outcome = conn, instance_id, None

    def lookupByUUIDString(self, uuid_string):
        racer, real = self, self.conn.lookupByUUIDString(uuid_string)

        class Domain:
            def __getattr__(self, name):
                return getattr(real, name)

            def undefineFlags(self, flags):
                return racer.then_start(real.undefineFlags, flags)

            def destroy(self):
                return racer.then_start(real.destroy)
        return Domain()

    def then_start(self, step, *args):
        result = step(*args)
        if self.start_outcome is None:
            try:
                self.start_outcome = domains.start_domain(self.conn, self.instance_id)["state"]
            except NotFound:
                self.start_outcome = "refused"
        return result


@pytest.mark.parametrize("running", [True, False])
def test_a_start_racing_a_destroy_cannot_bring_the_guest_back(conn, running):
    instance_id = define(conn, running)
    racing = StartsInBetween(conn, instance_id)
    assert domains.destroy_domain(racing, instance_id) is True
    # Stopped: undefined means gone, the start is refused. Running: the start finds it running
    # (transient now) and changes nothing; the destroy then removes it.
    assert racing.start_outcome == ("running" if running else "refused")
    assert domains.find_domain(conn, instance_id) is None
    assert domains.destroy_domain(conn, instance_id) is False
