"""Runs Debian's cloud-init EC2 datasource against the metadata service, as a cloud image's
cloud-init would at boot, and prints what it read as JSON.

    nsenter --net=<host netns> python3 cloudinit_probe.py <cloud-init dist-packages> <guest ip>

Run by the system python3 with Debian's python3-* libraries (cloud-init's own dependencies).
The guest is stood in for by an address on the namespace's bridge: every connection cloud-init
makes is bound to it (that is all this harness changes), because the metadata service knows a
guest by its source address. The datasource runs unchanged: version probing, listing crawl,
user-data, keys.
"""
import json
import sys
import tempfile

sys.path.insert(0, sys.argv[1])
GUEST_IP = sys.argv[2]

import urllib3.util.connection  # noqa: E402

_create_connection = urllib3.util.connection.create_connection


def _from_guest(address, *args, **kwargs):
    kwargs["source_address"] = (GUEST_IP, 0)
    return _create_connection(address, *args, **kwargs)


urllib3.util.connection.create_connection = _from_guest

from cloudinit import distros, helpers  # noqa: E402
from cloudinit.sources import DataSourceEc2  # noqa: E402

work = tempfile.mkdtemp(prefix="cloudinit-probe-")
paths = helpers.Paths({"cloud_dir": work, "run_dir": work})
distro = distros.fetch("debian")("debian", {}, paths)
# What a cloud image built for a private EC2-compatible cloud sets: not AWS, so no strict id.
sys_cfg = {"datasource": {"Ec2": {"strict_id": False, "metadata_urls": ["http://169.254.169.254"],
                                  "max_wait": 20, "timeout": 5}}}
source = DataSourceEc2.DataSourceEc2(sys_cfg, distro, paths)
found = source.get_data()
result = {"found": found}
if found:
    result.update(
        api_version=source._crawled_metadata.get("_metadata_api_version"),
        instance_id=source.get_instance_id(),
        hostname=source.get_hostname().hostname,
        local_ipv4=source.metadata.get("local-ipv4"),
        public_keys=source.get_public_ssh_keys(),
        user_data=(source.get_userdata_raw() or b"").decode(),
        availability_zone=source.availability_zone,
        instance_type=source.metadata.get("instance-type"),
    )
print(json.dumps(result))
