"""The one registry the area modules add their routes to, and the schema module prefixes."""
from gateway.routes import RouteRegistry

ACCOUNTS = "services.accounts.schemas:"
INSTANCES = "services.instances.schemas:"
STORAGE = "services.storage.schemas:"
METRICS = "services.metrics.schemas:"
NETWORK = "services.network.schemas:"

api = RouteRegistry()
route = api.route
