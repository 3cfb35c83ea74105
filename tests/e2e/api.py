"""A tiny REST client for the tests and benchmarks (requests + bearer token)."""
import time

import requests

from imagebuilder.bareboot import generate_ed25519_key, public_key_line

ADMIN_PASSWORD = "admin-e2e-password"


class Api:
    def __init__(self, base_url, token=None):
        self.base = base_url.rstrip("/") + "/api/v1"
        self.http = requests.Session()
        self.token = token
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method, path, expect=None, **kwargs):
        resp = self.http.request(method, self.base + path, timeout=30, **kwargs)
        if expect is not None:
            assert resp.status_code == expect, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp

    def login(self, username, password):
        token = self.call("POST", "/tokens", 201, json={"username": username, "password": password}).json()
        return Api(self.base[: -len("/api/v1")], token["token"])

    def wait_for(self, path, predicate, timeout=60, interval=0.1):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.call("GET", path)
            if predicate(last):
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out waiting on {path}; last answer {last.status_code} {last.text}")


def approved_user(base_url, admin, username, password="correct horse", project=None):
    """A new user, signed up and approved by `admin` into `project` (by default a new project of
    their own, named after them), logged in, with an SSH key (`.key`, its id) and `.project`."""
    anon = Api(base_url)
    made = anon.call("POST", "/users", 201, json={"username": username, "email": f"{username}@lab.example",
                                                 "password": password}).json()
    if project is None:
        project = admin.call("POST", "/projects", 201, json={"name": f"p-{username}"}).json()["id"]
    admin.call("POST", f"/users/{made['id']}/approve", 200, json={"project": project})
    api = anon.login(username, password)
    api.username, api.user_id, api.project, api.password = username, made["id"], project, password
    api.key = api.call("POST", "/keys", 201, json={"name": "k", "public_key": public_key_line(
        generate_ed25519_key())}).json()["id"]
    return api


def tiny_image(api):
    """The seeded `tiny` image (its newest version): what tests boot. Not the catalogue's first entry:
    the list is by name, and other tests of a shared stack add images (some with larger minimums)."""
    return max((i for i in api.call("GET", "/images", 200).json() if i["name"] == "tiny"),
               key=lambda i: i.get("version", 1))


def running_instances(api, count, prefix="vm"):
    """`count` instances of `api`'s user on the smallest flavor and the first image, waited for
    until all run (tests and benchmarks). Returns their ids."""
    flavor = min(api.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    image = tiny_image(api)
    ids = [api.call("POST", "/instances", 202, json={"name": f"{prefix}-{index}", "flavor": flavor["id"],
                                                     "image": image["id"], "key": api.key}).json()["id"]
           for index in range(count)]
    api.wait_for("/instances", lambda r: all(i["state"] == "running" for i in r.json() if i["id"] in ids),
                 timeout=120)
    return ids
