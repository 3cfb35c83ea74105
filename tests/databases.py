"""A migrated database of either kind labcloud runs on, for tests parametrized over both: SQLite
(the default) and PostgreSQL (what compose deploys)."""
import uuid

from common.migrate import upgrade


def migrated_url(request, kind, service_package):
    """The URL of a fresh database of `kind` ("sqlite" or "postgresql") migrated to the head of
    `service_package` (e.g. "services.network"); `request` is the test's pytest request."""
    if kind == "postgresql":
        name = f"{service_package.rsplit('.', 1)[-1]}_{uuid.uuid4().hex[:8]}"
        url = request.getfixturevalue("postgres").create_database(name)
        upgrade(service_package, url)
        return url
    return request.getfixturevalue("migrated_database")(service_package)
