"""Quotas hold under a race: three instances-service replicas, 40 concurrent creates over HTTP
against a project quota of 10 instances. Exactly 10 are accepted, the 30 others are refused with
403 quota_exceeded naming the resource, the limit and the usage; after 5 deletes, exactly 5 more fit."""
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user, tiny_image
from tests.e2e.conftest import FAST_TIMERS, stack_on


@pytest.fixture(scope="module")
def replicated_stack(rabbit_node, vhosts):
    stack = stack_on(rabbit_node, vhosts, FAST_TIMERS)
    stack.replicas = {"instances": 3}
    with stack as running:
        yield running


def create_many(user, body, names):
    def create(name):
        api = Api(user.base[: -len("/api/v1")], user.token)  # a connection of its own per request
        return api.call("POST", "/instances", json=dict(body, name=name))
    with ThreadPoolExecutor(len(names)) as pool:
        return list(pool.map(create, names))


def test_concurrent_creates_never_exceed_the_quota(replicated_stack):
    assert sum(1 for name in replicated_stack.processes if name.startswith("instances")) == 3
    admin = Api(replicated_stack.url).login("admin", ADMIN_PASSWORD)
    project = admin.call("POST", "/projects", 201, json={"name": "race", "quota": {
        "instances": 10, "vcpus": None, "memory_mib": None}}).json()
    user = approved_user(replicated_stack.url, admin, "racer", project=project["id"])
    flavor = min(user.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    body = {"flavor": flavor["id"], "image": tiny_image(user)["id"],
            "key": user.key, "project": project["id"]}

    answers = create_many(user, body, [f"r{i}-{uuid.uuid4().hex[:4]}" for i in range(40)])
    accepted = [a.json() for a in answers if a.status_code == 202]
    refused = [a for a in answers if a.status_code != 202]
    assert len(accepted) == 10, [a.status_code for a in answers]
    for answer in refused:
        assert answer.status_code == 403, answer.text
        error = answer.json()["error"]
        assert error["code"] == "quota_exceeded"
        assert error["fields"] == {"instances": ["project limit 10, in use 10, requested 1"]}
    usage = user.call("GET", f"/projects/{project['id']}/usage", 200).json()
    assert usage["resources"]["instances"] == {"limit": 10, "in_use": 10}

    for made in accepted:  # every accepted one really runs: the quota did not over-admit
        user.wait_for(f"/instances/{made['id']}", lambda r: r.json()["state"] == "running", timeout=120)
    for made in accepted[:5]:
        user.call("DELETE", f"/instances/{made['id']}", 202)
    for made in accepted[:5]:
        user.wait_for(f"/instances/{made['id']}", lambda r: r.status_code == 404, timeout=120)

    answers = create_many(user, body, [f"s{i}-{uuid.uuid4().hex[:4]}" for i in range(8)])
    assert sorted(a.status_code for a in answers) == [202] * 5 + [403] * 3
    assert user.call("GET", f"/projects/{project['id']}/usage", 200).json()["resources"]["instances"] == {
        "limit": 10, "in_use": 10}
