"""A host's storage pool, one class per kind behind one interface (base.HostPool):

- `dir` (pools/dir.py): a directory of qcow2 files; a root disk is a copy-on-write qcow2 over the
  image's file. What these machines run.
- `logical` (pools/logical.py): an LVM volume group; an image is a raw LV holding the template, a
  root disk an LVM snapshot of it. For real hosts with device-mapper.

The kind is the agent's configuration (STORAGE_POOL_KIND, default dir) and the agent reports it
(heartbeat, get_host_info, get_pool_usage), so storage names and formats volumes to match.
"""
from common.errors import HostOperationFailed
from hostagent.pools.base import HostPool
from hostagent.pools.dir import DirPool
from hostagent.pools.logical import LogicalPool

KINDS = {DirPool.kind: DirPool, LogicalPool.kind: LogicalPool}
DEFAULT_KIND = DirPool.kind

__all__ = ["HostPool", "DirPool", "LogicalPool", "KINDS", "from_config"]


def from_config(config):
    """The host's pool as the agent's configuration describes it. A kind that is not one of KINDS
    fails every pool operation (and the heartbeat) as HostOperationFailed naming the setting, so
    storage reports the host's fault instead of an internal error."""
    kind = config.get("STORAGE_POOL_KIND") or DEFAULT_KIND
    if kind not in KINDS:
        raise HostOperationFailed(f"the host agent's STORAGE_POOL_KIND is {kind!r}: one of {', '.join(sorted(KINDS))}")
    return KINDS[kind].from_config(config)
