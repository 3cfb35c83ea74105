"""Who sees and acts on which instance, and where a new instance goes: owner, the managers of its
project (teachers of the course) and admins; everyone else, even a classmate in the same project,
gets the answer an unknown id gets."""
import uuid

import pytest

from common.errors import Forbidden, InvalidInput, NotFound
from services.instances import access, lifecycle, power
from services.instances.models import Instance
from tests.instances.fakes import (
    ACTOR, ADMIN, CLASSMATE, NOW, OTHER_PROJECT, OTHER_STUDENT, OTHER_TEACHER, PROJECT, TEACHER, FakeCloud,
    limits_of, new_instance, running_instance)

ACTIONS = ["instance:get", "instance:stop", "instance:start", "instance:reboot", "instance:delete",
           "instance:console", "instance:actions", "instance:metrics"]
WHO = {"owner": (ACTOR, True), "teacher of the course": (TEACHER, True), "admin": (ADMIN, True),
       "teacher of another course": (OTHER_TEACHER, False), "classmate": (CLASSMATE, False)}


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("who", sorted(WHO))
def test_who_may_see_and_act_on_an_instance(session, who, action):
    inst = new_instance(session)
    actor, allowed = WHO[who]
    if allowed:
        assert access.visible_instance(session, actor, inst.id, action).id == inst.id
    else:
        with pytest.raises(NotFound) as err:
            access.visible_instance(session, actor, inst.id, action)
        assert str(err.value) == f"no instance {inst.id}"  # as if there were none


@pytest.mark.parametrize("instance_id", [str(uuid.uuid4()), "not-a-uuid", "", "x" * 5000, 12, None])
def test_unknown_and_malformed_ids_look_like_any_hidden_instance(session, instance_id):
    with pytest.raises(NotFound) as err:
        access.visible_instance(session, ADMIN, instance_id)
    assert str(err.value) == f"no instance {instance_id}"


def test_an_id_in_capitals_names_the_same_instance(session):
    inst = new_instance(session)
    assert access.visible_instance(session, ACTOR, inst.id.upper()).id == inst.id


def test_a_teacher_stops_starts_reboots_and_deletes_a_students_instance(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    for action, settled in (("stop", "stopped"), ("start", "running"), ("reboot", "running")):
        instance, requested = lifecycle.request_power(session, TEACHER, inst.id, action, limits_of())
        assert requested
        assert power.run_power(session, inst.id, action, cloud.peers.hosts, lambda: NOW) == settled
    assert lifecycle.request_delete(session, TEACHER, inst.id).state == "deleting"
    assert [(a.action, a.username) for a in lifecycle.instance_store.list_actions(session, inst.id)][1:] == [
        ("stop", "grace"), ("start", "grace"), ("reboot", "grace"), ("delete", "grace")]


@pytest.mark.parametrize("actor", [OTHER_TEACHER, CLASSMATE], ids=["teacher of another course", "classmate"])
def test_nobody_else_can_stop_or_delete_it(session, actor):
    cloud = FakeCloud()
    inst = running_instance(session, cloud)
    for request in (lambda: lifecycle.request_power(session, actor, inst.id, "stop", limits_of()),
                    lambda: lifecycle.request_delete(session, actor, inst.id)):
        with pytest.raises(NotFound):
            request()
    assert session.get(Instance, inst.id).state == "running"


@pytest.fixture
def two_courses(session):
    """ada's and bob's instances in course 30, carl's in course 31, grace's own in course 30."""
    return {name: new_instance(session, name, actor=actor, project=project).id for name, actor, project in (
        ("ada-vm", ACTOR, PROJECT), ("bob-vm", CLASSMATE, PROJECT), ("carl-vm", OTHER_STUDENT, OTHER_PROJECT),
        ("grace-vm", TEACHER, PROJECT))}


def listed(session, actor, **query):
    return sorted(i.name for i in access.list_instances(session, actor, **query))


def test_lists_show_own_instances_and_all_of_the_courses_one_teaches(session, two_courses):
    assert listed(session, ACTOR) == ["ada-vm"]
    assert listed(session, CLASSMATE) == ["bob-vm"]
    assert listed(session, TEACHER) == ["ada-vm", "bob-vm", "grace-vm"]
    assert listed(session, OTHER_TEACHER) == ["carl-vm"]
    assert listed(session, ADMIN) == ["ada-vm", "bob-vm", "carl-vm", "grace-vm"]


def test_a_list_narrowed_to_one_project(session, two_courses):
    assert listed(session, TEACHER, project=PROJECT) == ["ada-vm", "bob-vm", "grace-vm"]
    assert listed(session, ACTOR, project=PROJECT) == ["ada-vm"]   # a member: still only their own
    assert listed(session, ADMIN, project=OTHER_PROJECT) == ["carl-vm"]
    assert listed(session, ADMIN, project=999) == []
    for actor in (ACTOR, TEACHER):  # a project one is not in looks missing
        with pytest.raises(NotFound) as err:
            listed(session, actor, project=OTHER_PROJECT)
        assert str(err.value) == f"no project {OTHER_PROJECT}"


def test_deleted_instances_are_listed_only_when_asked_for(session, two_courses):
    lifecycle.request_delete(session, TEACHER, two_courses["ada-vm"])  # pending: deleted at once
    assert listed(session, ACTOR) == []
    assert listed(session, ACTOR, include_deleted=True) == ["ada-vm"]
    with pytest.raises(NotFound):
        access.visible_instance(session, ACTOR, two_courses["ada-vm"])
    assert access.visible_instance(session, ACTOR, two_courses["ada-vm"], include_deleted=True).state == "deleted"


# ----- which project a new instance goes to ---------------------------------------------------

def member_of(*projects, role="member", global_role="user"):
    return {"id": 50, "username": "x", "role": global_role, "projects": [{"id": p, "role": role} for p in projects]}


@pytest.mark.parametrize("actor, requested, expected", [
    (member_of(3), None, 3),                                  # the only project
    (member_of(3, 5), 5, 5),                                  # named, a member
    (member_of(3, role="manager"), 3, 3),                     # named, a manager
    (member_of(global_role="admin"), 77, 77),                 # admins: any project
])
def test_the_project_of_a_new_instance(actor, requested, expected):
    assert access.creation_project(actor, requested) == expected


@pytest.mark.parametrize("global_role", ["user", "admin"])
def test_one_in_no_project_must_name_one(global_role):
    with pytest.raises(Forbidden) as err:
        access.creation_project(member_of(global_role=global_role), None)
    assert str(err.value) == "you are not a member of any project; ask a teacher or an administrator"
    assert list(err.value.fields) == ["project"]


def test_a_user_in_several_projects_names_one():
    with pytest.raises(InvalidInput) as err:
        access.creation_project(member_of(5, 3), None)
    assert "several projects (3, 5)" in str(err.value)
    assert err.value.fields == {"project": ["name one of your projects: 3, 5"]}


@pytest.mark.parametrize("role", ["member", "manager"])
def test_a_project_one_is_not_in_is_refused(role):
    with pytest.raises(Forbidden) as err:
        access.creation_project(member_of(3, role=role), 4)
    assert err.value.fields == {"project": ["you are not a member of this project"]}
