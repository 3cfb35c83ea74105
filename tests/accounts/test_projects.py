"""Projects, their members and quota limits, against a migrated SQLite database: who may do what
(admin, manager, member, outsider) and what a repeated request does."""
import pytest
from sqlalchemy import select

from common.errors import Conflict, Forbidden, InvalidInput, NotFound
from common.quota import RESOURCES
from common.schemas import load
from services.accounts import keys, memberships, projects, quotas
from services.accounts.dependencies import DEFAULT_PROJECT_QUOTA
from services.accounts.models import Project, ProjectMember
from services.accounts.schemas import CreateProjectRequest, QuotaSchema

from tests.accounts.conftest import ADMIN

UNLIMITED = dict.fromkeys(RESOURCES)
NOT_IDS = ["3", True, 2 ** 64, -1, 0, None, 1.5]


@pytest.fixture
def course(session, clock, make_user):
    """Project `cs101`: teacher manages it, student is a member; outsider is in no project."""
    people = {name: make_user(name) for name in ("teacher", "student", "outsider")}
    project, _ = projects.create_project(session, ADMIN, {"name": "cs101",
                                                          "managers": [people["teacher"].id]},
                                         DEFAULT_PROJECT_QUOTA, clock())
    projects.add_member(session, ADMIN, project.id, people["student"].id, "member", None, clock())
    return project, people


def test_create_takes_default_quota_and_the_limits_given(session, clock, make_user):
    project, created = projects.create_project(
        session, ADMIN, {"name": "cs101", "description": "intro", "quota": {"vcpus": 4, "instances": None}},
        DEFAULT_PROJECT_QUOTA, clock())
    assert created and project.name == "cs101" and project.description == "intro"
    assert project.quota == {**DEFAULT_PROJECT_QUOTA, "vcpus": 4, "instances": None}
    assert project.idle_policy == "suspend" and project.default_lease_hours is None
    assert project.created_at == clock()


def test_create_is_for_admins_and_a_repeat_returns_the_first(session, clock, make_user):
    teacher = make_user("teacher")
    request = {"name": "cs101", "managers": [teacher.id], "default_lease_hours": 24}
    with pytest.raises(Forbidden):
        projects.create_project(session, {**ADMIN, "id": teacher.id, "role": "user"}, request,
                                DEFAULT_PROJECT_QUOTA, clock())
    first, _ = projects.create_project(session, ADMIN, request, DEFAULT_PROJECT_QUOTA, clock())
    again, created = projects.create_project(session, ADMIN, request, DEFAULT_PROJECT_QUOTA, clock())
    assert not created and again.id == first.id
    assert memberships.memberships_of(session, teacher.id) == [{"id": first.id, "role": "manager"}]
    with pytest.raises(Conflict) as err:
        projects.create_project(session, ADMIN, {**request, "default_lease_hours": 48},
                                DEFAULT_PROJECT_QUOTA, clock())
    assert set(err.value.fields) == {"name"}
    assert len(session.scalars(select(Project)).all()) == 1


def test_managers_must_be_live_users(session, clock, make_user):
    gone = make_user("gone", status="deleted")
    with pytest.raises(InvalidInput) as err:
        projects.create_project(session, ADMIN, {"name": "cs101", "managers": [gone.id, 999]},
                                DEFAULT_PROJECT_QUOTA, clock())
    assert set(err.value.fields) == {"managers"} and len(err.value.fields["managers"]) == 2
    assert session.scalars(select(Project)).all() == []


def test_request_schema_rules():
    good = {"name": "cs-101_a"}
    assert load(CreateProjectRequest, good) == {"name": "cs-101_a", "managers": []}
    for field, value in [("name", "CS101"), ("name", "ab"), ("name", "-abc"), ("name", "a" * 65),
                         ("managers", [2 ** 63]), ("managers", ["3"]), ("default_lease_hours", 0),
                         ("default_lease_hours", 8761), ("idle_policy", "stop"),
                         ("default_flavor", 2 ** 64), ("quota", {"vcpus": -1}),
                         ("quota", {"gpus": 1}), ("description", "x" * 1001)]:
        with pytest.raises(InvalidInput) as err:
            load(CreateProjectRequest, {**good, field: value})
        assert set(err.value.fields) == {field}, (field, value)


def test_quota_schema_has_one_limit_per_resource():
    assert set(QuotaSchema().fields) == set(RESOURCES)
    assert set(Project().quota) == set(ProjectMember().quota) == set(RESOURCES)


def test_outsiders_cannot_tell_hidden_from_missing(session, as_actor, course):
    project, people = course
    outsider = as_actor(people["outsider"])
    with pytest.raises(NotFound) as hidden:
        projects.visible_project(session, outsider, project.id)
    with pytest.raises(NotFound) as missing:
        projects.visible_project(session, outsider, project.id + 1000)
    assert (str(hidden.value).replace(str(project.id), "N")
            == str(missing.value).replace(str(project.id + 1000), "N"))
    assert hidden.value.fields == missing.value.fields
    for who in ("teacher", "student"):
        assert projects.visible_project(session, as_actor(people[who]), project.id).id == project.id
    assert projects.visible_project(session, ADMIN, project.id).id == project.id
    for bad in NOT_IDS + [project.id + 1000]:
        with pytest.raises(NotFound):
            projects.visible_project(session, ADMIN, bad)


def test_list_projects_admin_sees_all_others_their_own(session, clock, as_actor, course):
    project, people = course
    other, _ = projects.create_project(session, ADMIN, {"name": "cs102"}, DEFAULT_PROJECT_QUOTA, clock())
    assert [p.name for p in projects.list_projects(session, ADMIN)] == ["cs101", "cs102"]
    assert [p.name for p in projects.list_projects(session, as_actor(people["student"]))] == ["cs101"]
    assert projects.list_projects(session, as_actor(people["outsider"])) == []


def test_update_is_for_managers_and_admins(session, as_actor, course):
    project, people = course
    changes = {"description": "new", "default_lease_hours": 12, "idle_policy": "none",
               "default_flavor": 2, "default_image": 3}
    with pytest.raises(Forbidden):
        projects.update_project(session, as_actor(people["student"]), project.id, changes)
    with pytest.raises(NotFound):
        projects.update_project(session, as_actor(people["outsider"]), project.id, changes)
    updated, changed = projects.update_project(session, as_actor(people["teacher"]), project.id, changes)
    assert changed and (updated.description, updated.default_lease_hours, updated.idle_policy,
                        updated.default_flavor_id, updated.default_image_id) == ("new", 12, "none", 2, 3)
    assert projects.update_project(session, ADMIN, project.id, changes)[1] is False


def test_managers_add_members_only_admins_name_managers(session, clock, as_actor, make_user, course):
    project, people = course
    teacher, newcomer = as_actor(people["teacher"]), make_user("newcomer")
    with pytest.raises(Forbidden):
        projects.add_member(session, teacher, project.id, newcomer.id, "manager", None, clock())
    with pytest.raises(Forbidden):
        projects.add_member(session, as_actor(people["student"]), project.id, newcomer.id,
                            "member", None, clock())
    with pytest.raises(NotFound):
        projects.add_member(session, as_actor(people["outsider"]), project.id, newcomer.id,
                            "member", None, clock())
    member, changed = projects.add_member(session, teacher, project.id, newcomer.id, "member",
                                          {"vcpus": 2}, clock())
    assert changed and member.role == "member" and member.quota == {**UNLIMITED, "vcpus": 2}
    again, changed = projects.add_member(session, teacher, project.id, newcomer.id, "member",
                                         {"vcpus": 2}, clock())
    assert not changed and again.created_at == member.created_at  # an upsert: one row
    promoted, changed = projects.add_member(session, ADMIN, project.id, newcomer.id, "manager",
                                            None, clock())
    assert changed and promoted.role == "manager" and promoted.quota["vcpus"] == 2
    # A manager may not demote or remove another manager either.
    with pytest.raises(Forbidden):
        projects.add_member(session, teacher, project.id, newcomer.id, "member", None, clock())
    with pytest.raises(Forbidden):
        projects.remove_member(session, teacher, project.id, newcomer.id)
    assert memberships.find(session, project.id, newcomer.id).role == "manager"


def test_added_users_must_exist_and_be_live(session, clock, make_user, course):
    project, _ = course
    for user_id in [make_user("gone", status="deleted").id, make_user("no", status="rejected").id,
                    4242, "x"]:
        with pytest.raises(NotFound) as err:
            projects.add_member(session, ADMIN, project.id, user_id, "member", None, clock())
        assert set(err.value.fields) == {"user"}
    pending = make_user("pending", status="pending")
    assert projects.add_member(session, ADMIN, project.id, pending.id, "member", None, clock())[1]


def test_member_list_update_and_remove(session, as_actor, course):
    project, people = course
    teacher, student = as_actor(people["teacher"]), as_actor(people["student"])
    with pytest.raises(Forbidden):
        projects.list_members(session, student, project.id)
    listed = projects.list_members(session, teacher, project.id)
    assert [(m.user.username, m.role) for m in listed] == [("teacher", "manager"), ("student", "member")]
    member, changed = projects.update_member(session, teacher, project.id, student["id"],
                                             {"quota": {"instances": 1}})
    assert changed and member.quota["instances"] == 1
    with pytest.raises(Forbidden):
        projects.update_member(session, teacher, project.id, student["id"], {"role": "manager"})
    with pytest.raises(NotFound):
        projects.update_member(session, teacher, project.id, people["outsider"].id, {"quota": {}})
    assert projects.remove_member(session, teacher, project.id, student["id"]) is True
    assert projects.remove_member(session, teacher, project.id, student["id"]) is False
    assert memberships.memberships_of(session, student["id"]) == []


def test_quota_get_set_and_limits(session, as_actor, course):
    project, people = course
    student = as_actor(people["student"])
    assert quotas.get_quota(session, student, project.id) == DEFAULT_PROJECT_QUOTA
    with pytest.raises(NotFound):
        quotas.get_quota(session, as_actor(people["outsider"]), project.id)
    with pytest.raises(Forbidden):
        quotas.set_quota(session, as_actor(people["teacher"]), project.id, {"vcpus": 100})
    quota, changed = quotas.set_quota(session, ADMIN, project.id, {"vcpus": 100, "floating_ips": None})
    assert changed and quota == {**DEFAULT_PROJECT_QUOTA, "vcpus": 100, "floating_ips": None}
    assert quotas.set_quota(session, ADMIN, project.id, {"vcpus": 100})[1] is False
    projects.update_member(session, ADMIN, project.id, student["id"], {"quota": {"memory_mib": 2048}})
    assert quotas.quota_limits(session, project.id, student["id"]) == {
        "project": quota, "user": {**UNLIMITED, "memory_mib": 2048}}
    assert quotas.quota_limits(session, project.id, people["outsider"].id)["user"] == UNLIMITED
    for bad in NOT_IDS + [project.id + 1]:
        with pytest.raises(NotFound):
            quotas.quota_limits(session, bad, student["id"])


def test_usage_report_joins_limits_and_counts(session, as_actor, course):
    project, people = course
    student = as_actor(people["student"])
    projects.update_member(session, ADMIN, project.id, student["id"], {"quota": {"vcpus": 4}})
    found, limits = quotas.usage_limits(session, student, project.id)
    counted = {"project": {"instances": 3, "vcpus": 6, "memory_mib": 3072},
               "users": {str(student["id"]): {"instances": 1, "vcpus": 2, "memory_mib": 1024}}}
    report = quotas.usage_report(found.id, limits, counted, student["id"])
    assert report["project_id"] == project.id
    assert report["resources"]["vcpus"] == {"limit": 20, "in_use": 6}
    assert report["resources"]["floating_ips"] == {"limit": 2, "in_use": 0}
    assert report["mine"]["vcpus"] == {"limit": 4, "in_use": 2}
    assert report["mine"]["instances"] == {"limit": None, "in_use": 1}
    with pytest.raises(NotFound):
        quotas.usage_limits(session, as_actor(people["outsider"]), project.id)


def test_delete_refuses_while_instances_remain_then_unshares_keys(session, clock, as_actor,
                                                                 key_lines, course):
    project, people = course
    teacher = as_actor(people["teacher"])
    key, _ = keys.add_key(session, teacher, "laptop", key_lines.ed25519(), clock())
    key.project_id = project.id
    session.commit()
    with pytest.raises(Forbidden):
        projects.project_to_delete(session, teacher, project.id)
    with pytest.raises(NotFound):
        projects.project_to_delete(session, as_actor(people["outsider"]), project.id)
    found = projects.project_to_delete(session, ADMIN, project.id)
    with pytest.raises(Conflict) as err:
        projects.delete_project(session, found, {"project": {"instances": 2}, "users": {}})
    assert set(err.value.fields) == {"instances"}
    assert projects.delete_project(session, found, {"project": {"instances": 0}, "users": {}})
    assert projects.project_to_delete(session, ADMIN, project.id) is None  # a repeat
    assert memberships.memberships_of(session, teacher["id"]) == []
    session.expire_all()
    assert keys.get_key(session, teacher, key.id).project_id is None


def test_ensure_project_adds_the_manager_once(session, clock, make_user):
    boss = make_user("boss")
    first = projects.ensure_project(session, "admin", boss.id, clock())
    again = projects.ensure_project(session, "admin", boss.id, clock())
    assert first.id == again.id and first.quota == UNLIMITED
    assert memberships.memberships_of(session, boss.id) == [{"id": first.id, "role": "manager"}]
