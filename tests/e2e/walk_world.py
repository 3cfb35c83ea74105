"""The walks' world: two projects, users in every role, the owner's instance, key and tokens, a
subnet (admins') with a reserved address, a subnet block of project A, on a stack of its own
(tokens never cached, rate limits out of the way). Shared by the REST walk (test_route_walk.py)
and the portal walk (test_portal_walk.py): one stack for both."""
import os
import random
import subprocess
import tempfile
import uuid

from imagebuilder.bareboot import generate_ed25519_key, public_key_line
from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user, tiny_image

ROLES = ("anon", "outsider", "peer", "owner", "manager", "admin")
ENV = {"HEARTBEAT_INTERVAL": "1", "STATS_INTERVAL": "1", "METRICS_STEP": "1", "TOKEN_CACHE_SECONDS": "0",
       "RATE_LIMIT_PER_USERNAME": "100000", "RATE_LIMIT_PER_ADDRESS": "100000"}


def small_qcow2():
    """The bytes of an empty 16 MiB qcow2 (what an image upload in the walks sends)."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "disk.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, "16M"], check=True)
        with open(path, "rb") as disk:
            return disk.read()


def codes(*statuses):
    assert len(statuses) == len(ROLES)
    return dict(zip(ROLES, statuses))


def unique(prefix="w"):
    return f"{prefix}{uuid.uuid4().hex[:8]}"


class World:
    """Two projects: A (manager, owner, peer) and B (outsider); the owner's instance, key and
    tokens in A; an admin; a subnet (not the default) with one reserved address; a /28 block of
    another such subnet kept for A (not of the default subnet: A's instances keep their addresses).
    `fresh_*` make more of the same on demand."""

    def __init__(self, url):
        self.url = url
        self.admin = Api(url).login("admin", ADMIN_PASSWORD)
        self.admin.username, self.admin.password = "admin", ADMIN_PASSWORD
        self.project_a = self.admin.call("POST", "/projects", 201, json={"name": unique("a-"), "quota": {
            "instances": None, "vcpus": None, "memory_mib": None, "volumes": None, "volume_gib": None,
            "floating_ips": None}}).json()
        self.project_b = self.admin.call("POST", "/projects", 201, json={"name": unique("b-")}).json()
        a = self.project_a["id"]
        self.owner = approved_user(url, self.admin, unique("own"), project=a)
        self.peer = approved_user(url, self.admin, unique("peer"), project=a)
        self.manager = approved_user(url, self.admin, unique("mgr"), project=a)
        self.admin.call("POST", f"/projects/{a}/members", 201, json={"user": self.manager.user_id, "role": "manager"})
        self.outsider = approved_user(url, self.admin, unique("out"), project=self.project_b["id"])
        flavor = min(self.admin.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
        image = tiny_image(self.admin)
        self.create_body = {"flavor": flavor["id"], "image": image["id"], "project": a}
        self.instance = self.fresh_instance()
        self.key = self.owner.key
        self.token_id = self.owner.call("GET", f"/users/{self.owner.user_id}/tokens", 200).json()[0]["id"]
        # The instance's first samples, so its metrics route has something to show its owner.
        self.owner.wait_for(f"/instances/{self.instance}/metrics", lambda r: r.status_code == 200, timeout=30)
        self._cidrs = set()
        self.subnet = self.fresh_subnet()
        self.reserved_ip = self.subnet["reserved"][0]
        self.block = self.fresh_block()
        self.volume = self.fresh_volume()
        self.snapshot = self.fresh_snapshot()
        # What the allowed attaches (and create-and-attach) of the walks attach to: another instance
        # of the owner's, so the world's instance keeps no volume (a fresh instance per call would
        # fill the host).
        self.volume_target = self.fresh_instance()
        self.floating_pool = self.fresh_floating_pool()
        self.floating_ip = self.fresh_floating_ip()
        self.security_group = self.fresh_security_group()
        self.image = self.fresh_image()

    def session(self, role):
        if role == "anon":
            return Api(self.url)
        return getattr(self, role)

    # ----- fresh targets -----
    def fresh_instance(self):
        made = self.owner.call("POST", "/instances", 202, json=dict(
            self.create_body, name=unique("vm-"), key=self.owner.key)).json()
        self.owner.wait_for(f"/instances/{made['id']}", lambda r: r.json()["state"] == "running", timeout=60)
        return made["id"]

    def fresh_volume(self, instance=None):
        """A volume of the owner's (project A): available, or attached to `instance`."""
        made = self.owner.call("POST", "/volumes", 201, json={"name": unique("vol-"), "size_gib": 1}).json()
        if instance is not None:
            self.owner.call("POST", f"/volumes/{made['id']}/attach", 200, json={"instance": instance})
        return made["id"]

    def fresh_snapshot(self):
        return self.owner.call("POST", f"/volumes/{self.volume}/snapshots", 201, json={"name": unique("snap-")}).json()

    def fresh_floating_pool(self):
        """A /24 of 100.64.0.0/16 (shared address space) as a floating pool."""
        cidr = self.fresh_cidr().replace("10.100.", "100.64.")
        return self.admin.call("POST", "/floating-pools", 201, json={"name": unique("pool-"), "cidr": cidr}).json()

    def fresh_floating_ip(self, instance=None):
        """A floating IP of the owner's (project A), associated with `instance` if given."""
        made = self.owner.call("POST", "/floating-ips", 201, json={
            "project": self.project_a["id"], "pool": self.floating_pool["name"]}).json()
        if instance is not None:
            self.owner.call("POST", f"/floating-ips/{made['id']}/associate", 200, json={"instance": instance})
        return made

    def without_floating_ip(self, instance):
        """`instance`, with the floating IP a walk's row associated with it (if any) taken off."""
        for floating_ip in self.admin.call("GET", "/floating-ips", 200).json():
            if floating_ip["instance"] == instance:
                self.admin.call("POST", f"/floating-ips/{floating_ip['id']}/disassociate", 200)
        return instance

    def fresh_security_group(self):
        """A group of project A (made by its manager) with one rule: web from anywhere."""
        made = self.manager.call("POST", "/security-groups", 201, json={
            "project": self.project_a["id"], "name": unique("sg-")}).json()
        return self.manager.call("POST", f"/security-groups/{made['id']}/rules", 201, json={
            "protocol": "tcp", "port_min": 80, "cidr": "0.0.0.0/0"}).json()

    def fresh_image(self):
        """A private image of the owner's, uploaded (active)."""
        made = self.owner.call("POST", "/images", 201, json={"name": unique("img-")}).json()
        self.owner.call("PUT", f"/images/{made['id']}/file", 200, data=small_qcow2(),
                        headers={"Content-Type": "application/octet-stream"})
        return made["id"]

    def fresh_user(self, status="active"):
        name = unique("u")
        made = Api(self.url).call("POST", "/users", 201, json={
            "username": name, "email": f"{name}@lab.example", "password": "a good passphrase"}).json()
        if status != "pending":
            self.admin.call("POST", f"/users/{made['id']}/approve", 200)
        if status == "suspended":
            self.admin.call("POST", f"/users/{made['id']}/suspend", 200, json={})
        return made["id"]

    def fresh_key(self, api=None):
        """A new key of the owner (or of `api`'s user)."""
        return (api or self.owner).call("POST", "/keys", 201, json={
            "name": unique("k"), "public_key": public_key_line(generate_ed25519_key())}).json()["id"]

    def fresh_project(self):
        return self.admin.call("POST", "/projects", 201, json={"name": unique("e-")}).json()["id"]

    def fresh_member(self):
        user = self.fresh_user()
        self.admin.call("POST", f"/projects/{self.project_a['id']}/members", 201, json={"user": user})
        return user

    def fresh_cidr(self):
        """A /24 of 10.100.0.0/16 no subnet of this world has (the default is 10.99.0.0/22)."""
        while True:
            cidr = f"10.100.{random.randrange(256)}.0/24"
            if cidr not in self._cidrs:
                self._cidrs.add(cidr)
                return cidr

    def fresh_subnet(self):
        """A subnet with one reserved address (its .10): the subnet as the API describes it."""
        cidr = self.fresh_cidr()
        return self.admin.call("POST", "/subnets", 201, json={
            "name": unique("net-"), "cidr": cidr, "allocation_start": cidr.replace(".0/24", ".20"),
            "reserved": [cidr.replace(".0/24", ".10")]}).json()

    def fresh_block(self):
        """A /28 of a fresh subnet kept for project A: the block as the API describes it."""
        return self.admin.call("POST", f"/projects/{self.project_a['id']}/subnet-blocks", 201, json={
            "prefixlen": 28, "subnet": self.fresh_subnet()["name"]}).json()

    def blocks_of_a(self):
        return self.admin.call("GET", f"/projects/{self.project_a['id']}/subnet-blocks", 200).json()

    def fresh_login(self, api):
        return Api(self.url).login(api.username, api.password)


def csv_rows(world):
    name = unique("csv")
    return (f"username,email,full_name,course\n{name},{name}@lab.example,Csv Row,"
            f"{world.project_a['name']}\n").encode()


def own_key(world, role):
    """A key the role may put on an instance (anonymous gets the owner's: it is refused first)."""
    if role == "admin":
        return world.fresh_key(world.admin)
    return world.session("owner" if role == "anon" else role).key


# The owner's instance as it is now (rows that send its own values back: a change that changes nothing).
def _instance_now(world):
    return world.owner.call("GET", f"/instances/{world.instance}", 200).json()


def current_cpu_weight(world):
    return _instance_now(world)["cpu_weight"]


def current_flavor(world):
    return _instance_now(world)["flavor"]


def alarm_body(world):
    return {"instance": world.instance, "metric": "cpu_percent", "comparison": "GreaterThanThreshold",
            "threshold": 99, "period": 60}


def fresh_alarm(world):
    return world.owner.call("POST", "/alarms", 201, json=alarm_body(world)).json()["id"]


def owners_alarm(world):
    """One alarm of the owner's for both walks (it must still be there at the end)."""
    if not hasattr(world, "alarm"):
        world.alarm = fresh_alarm(world)
    return world.alarm


def schedule_body(world):
    """A stop far in the future: the walks must not stop the world's instance."""
    return {"instance": world.instance, "action": "stop", "at": "2099-01-01T08:00:00+01:00"}


def fresh_schedule(world):
    return world.owner.call("POST", "/schedules", 201, json=schedule_body(world)).json()["id"]


def owners_schedule(world):
    """One schedule of the owner's for both walks (it must still be there at the end)."""
    if not hasattr(world, "schedule"):
        world.schedule = fresh_schedule(world)
    return world.schedule


def host_of(world):
    return _instance_now(world)["host"]


# How a walk row makes its call for a role: a dict of path params and optionally the body
# (`json` for the API, `data` for a portal form) and other request parts.
AUTHORISED = ("owner", "manager", "admin")


def shared(world, role):
    return {}


def fresh_for(allowed, make):
    """Roles in `allowed` get a fresh target (their call succeeds and changes it); the others the
    shared one (their call must be refused and change nothing)."""
    def call(world, role):
        return make(world) if role in allowed else {}
    return call
