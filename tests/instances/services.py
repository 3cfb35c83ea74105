"""The instances service with every real service it talks to (accounts, network, storage, a host
agent on test:///default) in the test process, over the real broker: shared by the service-level
tests. Users are real accounts: the bootstrap admin makes a course and approves its members, and
every actor is what accounts.authenticate returns (so it carries its project roles)."""
import time
import uuid
from contextlib import contextmanager

from nameko.standalone.rpc import ClusterRpcProxy

from common.db import make_engine
from common.errors import NotFound
from hostagent.service import make_service
from imagebuilder.bareboot import generate_ed25519_key, public_key_line
from services.accounts.bootstrap import ensure_admin
from services.accounts.passwords import Hasher
from services.accounts.service import AccountsService
from services.instances.service import InstancesService
from services.network.service import NetworkService
from services.storage.service import StorageService

ADMIN_PASSWORD = "admin-password-1"
PASSWORD = "wonderland-42"
CHEAP_HASH = {"time_cost": 1, "memory_cost_kib": 8, "parallelism": 1}  # the tests make many users


def wait(predicate, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def gone(rpc, actor, instance_id):
    """Deleted: a GET answers NotFound (the list still shows it with include_deleted)."""
    try:
        rpc.instances.get_instance(actor, instance_id)
    except NotFound:
        return True
    return False


class Cloud:
    """What a test gets: rpc (a cluster proxy), admin (the bootstrap admin's actor), project (the
    course ada is a member of), actor and key of user ada, the host's name and agent container, the
    agent's config, the instances database URL."""

    def login(self, username, password=PASSWORD):
        issued = self.rpc.accounts.issue_token({"username": username, "password": password})
        return self.rpc.accounts.authenticate(issued["token"])

    def new_user(self, username, project_id=None, role="member"):
        """An active user in `project_id` (the course if None) as `role`; returns its actor."""
        user = self.rpc.accounts.signup({"username": username, "email": f"{username}@lab.example",
                                         "password": PASSWORD})
        self.rpc.accounts.approve_user(self.admin, user["id"])
        self.rpc.accounts.add_member(self.admin, project_id or self.project["id"], {"user": user["id"], "role": role})
        return self.login(username)

    def add_key(self, actor):
        return self.rpc.accounts.add_key(actor, {"name": "k", "public_key": public_key_line(generate_ed25519_key())})


@contextmanager
def running_cloud(container_factory, service_config, migrated_database, instances_config, replicas=1,
                  quota=None):
    """`quota`: limits of ada's course (accounts' defaults for the rest)."""
    cloud = Cloud()
    cloud.host = f"it-{uuid.uuid4().hex[:6]}"
    cloud.agent_config = service_config(
        LIBVIRT_URI="test:///default", POOL_NAME=f"p{cloud.host}", POOL_PATH=f"/labcloud-test/{cloud.host}",
        HEARTBEAT_INTERVAL=0.2, STATS_INTERVAL=60)
    cloud.agent = container_factory(make_service(cloud.host), cloud.agent_config)
    accounts_db = migrated_database("services.accounts")
    engine = make_engine(accounts_db)
    ensure_admin(engine, ADMIN_PASSWORD, Hasher(**CHEAP_HASH))
    engine.dispose()
    for cls, database, extra in (
            (AccountsService, accounts_db, {"PASSWORD_HASH": CHEAP_HASH}),
            (NetworkService, migrated_database("services.network"), {"HOST_RPC_TIMEOUT": 2}),
            (StorageService, migrated_database("services.storage"),
             {"DATA_DIR": "/srv/labcloud", "HOST_RPC_TIMEOUT": 2})):
        container_factory(cls, service_config(DATABASE_URL=database, **extra)).start()
    cloud.instances_db = migrated_database("services.instances")
    config = service_config(DATABASE_URL=cloud.instances_db, HOST_RPC_TIMEOUT=2, **instances_config)
    for _ in range(replicas):  # replicas share the queues and the database
        container_factory(InstancesService, config).start()
    cloud.agent.start()
    with ClusterRpcProxy(service_config(), timeout=30) as rpc:
        cloud.rpc = rpc
        cloud.admin = cloud.login("admin", ADMIN_PASSWORD)
        cloud.project = rpc.accounts.create_project(cloud.admin, {"name": "course", "quota": quota or {}})
        cloud.actor = cloud.new_user("ada")
        cloud.key = cloud.add_key(cloud.actor)
        wait(lambda: any(h["name"] == cloud.host for h in rpc.instances.list_hosts(cloud.admin)), what="heartbeat")
        yield cloud
