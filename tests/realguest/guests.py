"""Real guests for the tests of this package: a student with an SSH key, and tiny-image guests of
theirs on the smallest flavor, running and reachable over SSH."""
import contextlib

import paramiko

from imagebuilder.bareboot import generate_ed25519_key, public_key_line
from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user


def student_with_key(url, username):
    """(admin api, the student's api, their private key, the key's id) on the stack at `url`."""
    admin = Api(url).login("admin", ADMIN_PASSWORD)
    api = approved_user(url, admin, username)
    key = generate_ed25519_key()
    key_id = api.call("POST", "/keys", 201, json={"name": f"{username}-key",
                                                  "public_key": public_key_line(key)}).json()["id"]
    return admin, api, key, key_id


def tiny_guests(api, key_id, names, wait_ready):
    """The named guests (tiny image, smallest flavor), created at once and waited for until their
    SSH answered; fails naming any that did not get there."""
    flavor = min(api.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    image = next(i for i in api.call("GET", "/images", 200).json() if i["name"] == "tiny")
    ids = [api.call("POST", "/instances", 202, json={"name": name, "flavor": flavor["id"], "image": image["id"],
                                                     "key": key_id}).json()["id"] for name in names]
    instances = [wait_ready(api, iid) for iid in ids]
    assert all(i["state"] == "running" and i["ready"] for i in instances), instances
    return instances


@contextlib.contextmanager
def students_guests(url, username, names, wait_ready):
    """A new student's running guests for a test module: (their api, their key, [guests]), deleted
    at the end."""
    _admin, api, key, key_id = student_with_key(url, username)
    instances = tiny_guests(api, key_id, names, wait_ready)
    try:
        yield api, key, instances
    finally:
        for instance in instances:
            api.call("DELETE", f"/instances/{instance['id']}")


class SSHClient(paramiko.SSHClient):
    """Closes and then waits for its transport's thread to end. (In these eventlet-patched tests
    that thread is a greenthread: one left reading the closed socket holds its fd number in the
    hub, and the next file that gets that number, a subprocess's pipe, fails with "second
    simultaneous read".)"""

    def close(self):
        transport = self.get_transport()
        super().close()
        if transport is not None:
            transport.join(10)
