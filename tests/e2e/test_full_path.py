"""Steps 1-7 of the foundation, over HTTP, against the whole system running as processes."""
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
    approved = admin.call("POST", f"/users/{user['id']}/approve", 200).json()
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
    alice.wait_for(f"/instances/{iid}", lambda r: r.status_code == 404 or r.json()["state"] == "deleted")
    body["name"] = "web-2"
    second = alice.call("POST", "/instances", 202, json=body).json()
    second = alice.wait_for(f"/instances/{second['id']}", lambda r: r.json()["state"] in ("running", "error")).json()
    assert second["state"] == "running" and second["ip"] == first_ip
    alice.call("DELETE", f"/instances/{second['id']}", 202)
    alice.wait_for(f"/instances/{second['id']}", lambda r: r.status_code == 404 or r.json()["state"] == "deleted")


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
