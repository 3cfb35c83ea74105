"""The instances service with every real service it talks to (accounts, network, storage, a host
agent on test:///default) in the test process, over the real broker: shared by the service-level
tests."""
import time
import uuid
from contextlib import contextmanager

from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy

from hostagent.service import make_service
from imagebuilder.bareboot import generate_ed25519_key, public_key_line
from services.accounts.service import AccountsService
from services.instances.service import InstancesService
from services.network.service import NetworkService
from services.storage.service import StorageService


def wait(predicate, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class AccountsWithoutQuotas(AccountsService):
    """Until the accounts service has projects and quota limits: no limits for any project."""
    name = "accounts"

    @rpc
    def get_quota_limits(self, project_id, user_id):
        return {"project": {}, "user": {}}


class Cloud:
    """What a test gets: rpc (a cluster proxy), actor and key of user ada, the host's name and
    agent container, the agent's config, the instances database URL."""


@contextmanager
def running_cloud(container_factory, service_config, migrated_database, instances_config, replicas=1):
    cloud = Cloud()
    cloud.host = f"it-{uuid.uuid4().hex[:6]}"
    cloud.agent_config = service_config(
        LIBVIRT_URI="test:///default", POOL_NAME=f"p{cloud.host}", POOL_PATH=f"/labcloud-test/{cloud.host}",
        HEARTBEAT_INTERVAL=0.2, STATS_INTERVAL=60)
    cloud.agent = container_factory(make_service(cloud.host), cloud.agent_config)
    for cls, package, extra in (
            (AccountsWithoutQuotas, "services.accounts", {}),
            (NetworkService, "services.network", {}),
            (StorageService, "services.storage", {"DATA_DIR": "/srv/labcloud", "HOST_RPC_TIMEOUT": 2})):
        container_factory(cls, service_config(DATABASE_URL=migrated_database(package), **extra)).start()
    cloud.instances_db = migrated_database("services.instances")
    config = service_config(DATABASE_URL=cloud.instances_db, HOST_RPC_TIMEOUT=2, **instances_config)
    for _ in range(replicas):  # replicas share the queues and the database
        container_factory(InstancesService, config).start()
    cloud.agent.start()
    with ClusterRpcProxy(service_config(), timeout=30) as rpc:
        cloud.rpc = rpc
        cloud.actor = {"id": rpc.accounts.signup({"username": "ada", "email": "ada@lab.example",
                                                   "password": "long-enough"})["id"],
                       "username": "ada", "role": "user", "projects": [{"id": 1, "role": "member"}]}
        cloud.key = rpc.accounts.add_key(cloud.actor, {"name": "k", "public_key": public_key_line(
            generate_ed25519_key())})
        wait(lambda: any(h["name"] == cloud.host for h in rpc.instances.list_hosts()), what="heartbeat")
        yield cloud
