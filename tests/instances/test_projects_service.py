"""Courses, quotas and access over the real broker, with the real accounts service deciding who is in
which course and what its quota is: forty creates at once on three replicas against a quota of ten,
a teacher acting on a student's instance where nobody else can, the usage accounts reports, and the
instances of a deleted user handed over or deleted."""
import time

import pytest
from nameko.standalone.events import event_dispatcher

from common.errors import Forbidden, NotFound, QuotaExceeded
from tests.instances.services import gone, running_cloud, wait


@pytest.fixture
def cloud(container_factory, service_config, migrated_database):
    with running_cloud(container_factory, service_config, migrated_database, {"HOST_STALE_AFTER": 30},
                       replicas=3, quota={"instances": 10}) as c:
        yield c


def create(cloud, actor, name, key=None):
    return cloud.rpc.instances.create_instance(actor, {"name": name, "flavor": 1, "image": 1,
                                                       "key": (key or cloud.key)["id"]})


def create_running(cloud, name):
    inst = create(cloud, cloud.actor, name)
    return wait(lambda: (i := cloud.rpc.instances.get_instance(cloud.actor, inst["id"]))["state"] == "running" and i,
                what=f"{name} running")


def results(replies):
    """(accepted instances, QuotaExceeded errors) of async create calls."""
    accepted, refused = [], []
    for reply in replies:
        try:
            accepted.append(reply.result())
        except QuotaExceeded as exc:
            refused.append(exc)
    return accepted, refused


def test_forty_creates_at_once_on_three_replicas_take_exactly_the_quota(cloud):
    rpc, project = cloud.rpc, cloud.project["id"]
    replies = [rpc.instances.create_instance.call_async(
        cloud.actor, {"name": f"vm-{n}", "flavor": 1, "image": 1, "key": cloud.key["id"]}) for n in range(40)]
    accepted, refused = results(replies)
    assert (len(accepted), len(refused)) == (10, 30)
    assert {tuple(e.fields["instances"]) for e in refused} == {("project limit 10, in use 10, requested 1",)}
    assert {i["project"] for i in accepted} == {project}
    assert rpc.instances.get_project_usage(project) == {
        "project": {"instances": 10, "vcpus": 10, "memory_mib": 1280},
        "users": {str(cloud.actor["id"]): {"instances": 10, "vcpus": 10, "memory_mib": 1280}}}
    assert rpc.accounts.get_usage(cloud.actor, project)["resources"]["instances"] == {"limit": 10, "in_use": 10}

    for inst in accepted[:5]:
        rpc.instances.delete_instance(cloud.actor, inst["id"])
    wait(lambda: all(gone(rpc, cloud.actor, i["id"]) for i in accepted[:5]), timeout=30, what="five deleted")
    for n in range(5):
        create(cloud, cloud.actor, f"again-{n}")
    with pytest.raises(QuotaExceeded) as err:
        create(cloud, cloud.actor, "one-too-many")
    assert err.value.fields == {"instances": ["project limit 10, in use 10, requested 1"]}


def test_a_teacher_acts_on_a_students_instance_nobody_else_can(cloud):
    rpc, project = cloud.rpc, cloud.project["id"]
    teacher = cloud.new_user("grace", role="manager")
    classmate = cloud.new_user("bob")
    other_course = rpc.accounts.create_project(cloud.admin, {"name": "other-course"})
    other_teacher = cloud.new_user("hedy", other_course["id"], role="manager")
    inst = create_running(cloud, "web")

    assert [i["id"] for i in rpc.instances.list_instances(teacher)] == [inst["id"]]
    assert [i["id"] for i in rpc.instances.list_instances(teacher, False, project)] == [inst["id"]]
    assert rpc.instances.list_instances(classmate) == []
    for outsider in (classmate, other_teacher):
        with pytest.raises(NotFound):
            rpc.instances.get_instance(outsider, inst["id"])
        with pytest.raises(NotFound):
            rpc.instances.stop_instance(outsider, inst["id"])
    with pytest.raises(NotFound):
        rpc.instances.list_instances(other_teacher, False, project)

    assert rpc.instances.stop_instance(teacher, inst["id"])["state"] == "stopping"
    wait(lambda: rpc.instances.get_instance(cloud.actor, inst["id"])["state"] == "stopped", what="stopped")
    rpc.accounts.set_quota(cloud.admin, project, {"vcpus": 0})
    with pytest.raises(QuotaExceeded) as err:
        rpc.instances.start_instance(teacher, inst["id"])
    assert err.value.fields == {"vcpus": ["project limit 0, in use 0, requested 1"]}
    assert [(a["action"], a["username"]) for a in rpc.instances.list_instance_actions(teacher, inst["id"])] == [
        ("create", "ada"), ("stop", "grace")]


def test_a_user_in_no_course_may_look_but_not_create(cloud):
    user = cloud.rpc.accounts.signup({"username": "eve", "email": "eve@lab.example", "password": "wonderland-42"})
    cloud.rpc.accounts.approve_user(cloud.admin, user["id"])
    eve = cloud.login("eve")
    assert cloud.rpc.instances.list_instances(eve) == []
    with pytest.raises(Forbidden) as err:
        create(cloud, eve, "vm")
    assert list(err.value.fields) == ["project"]


def redeliver_user_deleted(service_config, user, transfer_to=None):
    """The accounts service's event once more, as a redelivery would bring it; handled (in
    milliseconds) by the time this returns."""
    event_dispatcher(service_config())("accounts", "user_deleted", {
        "user_id": user["id"], "username": user["username"], "transfer_to": transfer_to})
    time.sleep(1)


def test_a_deleted_users_instances_go_to_the_user_named(cloud, service_config):
    rpc = cloud.rpc
    bob = cloud.new_user("bob")
    web = create_running(cloud, "web")
    create(cloud, bob, "web", cloud.add_key(bob))
    rpc.accounts.delete_user(cloud.admin, cloud.actor["id"], {"transfer_to": bob["id"]})
    names = wait(lambda: len(mine := rpc.instances.list_instances(bob)) == 2 and {i["name"] for i in mine},
                 what="transferred")
    assert names == {"web", f"web-{web['id'][:6]}"}
    redeliver_user_deleted(service_config, cloud.actor, transfer_to=bob["id"])
    assert [(a["action"], a["user_id"]) for a in rpc.instances.list_instance_actions(bob, web["id"])] == [
        ("create", cloud.actor["id"]), ("transfer", None)]
    assert {i["name"] for i in rpc.instances.list_instances(bob)} == names


def test_a_deleted_users_instances_are_deleted_by_labcloud(cloud, service_config):
    rpc = cloud.rpc
    web = create_running(cloud, "web")
    rpc.accounts.delete_user(cloud.admin, cloud.actor["id"])
    wait(lambda: gone(rpc, cloud.admin, web["id"]), what="deleted")
    assert rpc.network.get_address(web["id"]) is None
    redeliver_user_deleted(service_config, cloud.actor)
    assert [(a["action"], a["user_id"], a["result"]) for a in rpc.instances.list_instance_actions(cloud.admin, web["id"])] == [
        ("create", cloud.actor["id"], "success"), ("delete", None, "success")]
