"""Every endpoint of the gateway, one module per area. Each view is one RPC call (after
authentication); the services decide what an actor may do, so nothing here looks at roles,
owners or projects."""
from gateway.api.registry import api
from gateway.api import admin, instances, keys, meta, networks, projects, users  # noqa: F401  (they register)
from gateway.api import volumes  # noqa: F401  (it registers)
from gateway.api import floating_ips  # noqa: F401  (it registers)
from gateway.api import notifications  # noqa: F401  (it registers)
from gateway.api import metrics  # noqa: F401  (it registers)
from gateway.api import images  # noqa: F401  (it registers)
from gateway.api import alarms  # noqa: F401  (it registers)
from gateway.api import schedules  # noqa: F401  (it registers)

__all__ = ["api"]
