"""Every endpoint of the gateway, one module per area. Each view is one RPC call (after
authentication); the services decide what an actor may do, so nothing here looks at roles,
owners or projects."""
from gateway.api.registry import api
from gateway.api import admin, instances, keys, meta, networks, projects, users  # noqa: F401  (they register)

__all__ = ["api"]
