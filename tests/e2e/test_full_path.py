"""Steps 1-7 of the foundation, over HTTP, against the whole system running as processes."""
import os
import subprocess
import sys

import pytest

from imagebuilder.bareboot import generate_ed25519_key, public_key_line
from tests.e2e.api import ADMIN_PASSWORD, Api


@pytest.fixture(scope="module")
def anon(stack):
    return Api(stack.url)


@pytest.fixture(scope="module")
def admin(anon):
    return anon.login("admin", ADMIN_PASSWORD)


def signup_and_approve(anon, admin, username):
    user = anon.call("POST", "/users", 201, json={
        "username": username, "email": f"{username}@lab.example", "password": "correct horse"}).json()
    assert user["status"] == "pending"
    refused = anon.call("POST", "/tokens", 403, json={"username": username, "password": "correct horse"})
    assert refused.json()["error"]["code"] == "forbidden"
    project = admin.call("POST", "/projects", 201, json={"name": f"p-{username}"}).json()
    approved = admin.call("POST", f"/users/{user['id']}/approve", 200, json={"project": project["id"]}).json()
    assert approved["status"] == "active"
    return anon.login(username, "correct horse")


def test_full_path(stack, anon, admin):
    # 1. sign up, approval, token
    alice = signup_and_approve(anon, admin, "alice")
    bob = signup_and_approve(anon, admin, "bob")

    # 2. SSH key (garbage refused, naming the field)
    bad = alice.call("POST", "/keys", 400, json={"name": "bad", "public_key": "ssh-rsa not-base64!"})
    assert "public_key" in bad.json()["error"]["fields"]
    laptop = public_key_line(generate_ed25519_key(), "student@lab")
    key = alice.call("POST", "/keys", 201, json={"name": "laptop", "public_key": laptop}).json()
    assert key["fingerprint"].startswith("SHA256:") and key["id"]

    # 3. flavors and images
    flavors = alice.call("GET", "/flavors", 200).json()
    assert len(flavors) >= 2 and all({"vcpus", "memory_mib", "cpu_weight", "cpu_cap_percent"} <= set(f) for f in flavors)
    images = alice.call("GET", "/images", 200).json()
    assert images
    small = min(flavors, key=lambda f: f["memory_mib"])

    # 4. create
    body = {"name": "web-1", "flavor": small["id"], "image": images[0]["id"], "key": key["id"]}
    created = alice.call("POST", "/instances", 202, json=body).json()
    assert created["state"] == "pending" and created["id"]
    iid = created["id"]

    # 5. it runs, with host, IP, MAC; only the owner and admins see it
    inst = alice.wait_for(f"/instances/{iid}", lambda r: r.json()["state"] in ("running", "error")).json()
    assert inst["state"] == "running", inst
    assert inst["host"] == "host1" and inst["ip"].startswith("10.99.") and inst["mac"].startswith("aa:00:")
    assert inst["flavor"] == small["id"] and inst["image"] == images[0]["id"] and inst["created_at"]
    assert [i["id"] for i in alice.call("GET", "/instances", 200).json()] == [iid]
    assert bob.call("GET", "/instances", 200).json() == []
    assert bob.call("GET", f"/instances/{iid}", 404).json()["error"]["code"] == "not_found"
    assert iid in [i["id"] for i in admin.call("GET", "/instances", 200).json()]

    # 6. metrics arrive from the host agent through the metrics service
    def has_samples(resp):
        series = resp.json().get("series", {}) if resp.status_code == 200 else {}
        return any(v is not None for _, v in series.get("memory_mib", []))
    metrics = alice.wait_for(f"/instances/{iid}/metrics?seconds=300", has_samples, timeout=30, interval=0.5).json()
    assert set(metrics["series"]) >= {"cpu_percent", "memory_mib", "disk_read_bps", "net_rx_bps"}
    assert any(v == small["memory_mib"] for _, v in metrics["series"]["memory_mib"] if v is not None)
    bob.call("GET", f"/instances/{iid}/metrics", 404)

    # 7. delete releases everything; a second create reuses the IP
    first_ip = inst["ip"]
    assert alice.call("DELETE", f"/instances/{iid}", 202).json()["state"] in ("deleting", "deleted")
    alice.wait_for(f"/instances/{iid}", lambda r: r.status_code == 404)
    body["name"] = "web-2"
    second = alice.call("POST", "/instances", 202, json=body).json()
    second = alice.wait_for(f"/instances/{second['id']}", lambda r: r.json()["state"] in ("running", "error")).json()
    assert second["state"] == "running" and second["ip"] == first_ip
    alice.call("DELETE", f"/instances/{second['id']}", 202)
    alice.wait_for(f"/instances/{second['id']}", lambda r: r.status_code == 404)


def test_errors_are_json_with_fields_and_no_traces(stack, anon, admin):
    resp = anon.call("GET", "/instances", 401)
    assert resp.json()["error"]["code"] == "unauthorized"
    resp = admin.call("POST", "/instances", 400, json={"name": "Bad Name!", "flavor": "x"})
    fields = resp.json()["error"]["fields"]
    assert {"name", "flavor", "image", "key"} <= set(fields)
    resp = admin.call("POST", "/instances", 400, data="{not json", headers={"Content-Type": "application/json"})
    assert "Traceback" not in resp.text
    spec = anon.call("GET", "/openapi.json", 200).json()
    assert spec["openapi"].startswith("3.") and "/api/v1/instances" in str(spec["paths"])


def test_admin_registers_an_image_users_boot(stack, anon, admin, tmp_path):
    """A disk image made elsewhere (here: an empty qcow2; the test driver boots nothing) is
    registered over REST by an admin and becomes bootable for users."""
    disk = tmp_path / "made-elsewhere.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "1G"], check=True)
    carol = signup_and_approve(anon, admin, "carol")
    body = {"name": "debian-cloud", "source_path": str(disk), "description": "cloud-init"}
    refused = carol.call("POST", "/images", 403, json=body).json()
    assert refused["error"]["code"] == "forbidden"
    bad = admin.call("POST", "/images", 400, json={**body, "source_path": str(tmp_path / "nope.qcow2")}).json()
    assert "source_path" in bad["error"]["fields"]
    image = admin.call("POST", "/images", 201, json=body).json()
    assert image["boot"] == "disk" and image["min_disk_gib"] == 1 and "source_path" not in image
    assert admin.call("POST", "/images", 409, json=body).json()["error"]["fields"] == {"name": ["already registered"]}
    assert image in carol.call("GET", "/images", 200).json()

    key = carol.call("POST", "/keys", 201, json={
        "name": "k", "public_key": public_key_line(generate_ed25519_key())}).json()
    flavor = min(carol.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    inst = carol.call("POST", "/instances", 202, json={
        "name": "cloudy", "flavor": flavor["id"], "image": image["id"], "key": key["id"]}).json()
    inst = carol.wait_for(f"/instances/{inst['id']}", lambda r: r.json()["state"] in ("running", "error")).json()
    assert inst["state"] == "running" and inst["image"] == image["id"], inst
    carol.call("DELETE", f"/instances/{inst['id']}", 202)
    carol.wait_for(f"/instances/{inst['id']}", lambda r: r.status_code == 404)


def test_image_register_command(stack, admin, tmp_path):
    disk = tmp_path / "other.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "2G"], check=True)
    env = {**os.environ, "LABCLOUD_URL": stack.url, "LABCLOUD_TOKEN": admin.token}

    def register(*argv):
        return subprocess.run([sys.executable, "-m", "labcloud.cli", "image", "register", *argv],
                              capture_output=True, text=True, env=env, timeout=60)
    done = register("debian-cli", "--disk", str(disk), "--description", "from the CLI")
    assert done.returncode == 0, done.stderr
    assert "boots from its disk" in done.stdout and "at least 2 GiB" in done.stdout
    assert any(i["name"] == "debian-cli" and i["description"] == "from the CLI"
               for i in admin.call("GET", "/images", 200).json())
    refused = register("Bad_Name", "--disk", str(disk))
    assert refused.returncode == 2 and "name:" in refused.stderr
    missing = register("course-x", "--data-dir", str(tmp_path))  # nothing built there
    assert missing.returncode == 2 and "labcloud image build course-x" in missing.stderr
