"""Projects, members and quotas over the real broker, as the instances service and the gateway
call them; the instances service is a stand-in answering get_project_usage."""
import pytest
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy

from common.errors import Conflict, Forbidden, InvalidInput, NotFound

from tests.accounts.conftest import ADMIN_PASSWORD, login

PASSWORD = "wonderland-42"


class FakeInstances:
    """Answers get_project_usage with what the test put in `usage`."""
    name = "instances"
    usage = {}

    @rpc
    def get_project_usage(self, project_id):
        return self.usage.get(project_id, {"project": {"instances": 0, "vcpus": 0, "memory_mib": 0},
                                           "users": {}})


class FakeStorage:
    """Answers get_project_usage (data volumes) with what the test put in `usage`."""
    name = "storage"
    usage = {}

    @rpc
    def get_project_usage(self, project_id):
        return self.usage.get(project_id, {"project": {"volumes": 0, "volume_gib": 0}, "users": {}})


class FakeNetwork:
    """Answers get_project_usage (floating IPs) with what the test put in `usage`."""
    name = "network"
    usage = {}

    @rpc
    def get_project_usage(self, project_id):
        return self.usage.get(project_id, {"project": {"floating_ips": 0}, "users": {}})


@pytest.fixture
def cloud(accounts, container_factory):
    FakeInstances.usage, FakeStorage.usage, FakeNetwork.usage = {}, {}, {}
    for stand_in in (FakeInstances, FakeStorage, FakeNetwork):
        container_factory(stand_in, accounts).start()
    return accounts


def active_user(rpc, admin, username):
    user = rpc.signup({"username": username, "email": f"{username}@example.org", "password": PASSWORD})
    rpc.approve_user(admin, user["id"])
    return user


def test_course_lifecycle_over_rpc(cloud):
    with ServiceRpcProxy("accounts", cloud) as rpc:
        admin = login(rpc, "admin", ADMIN_PASSWORD)
        teacher, student = active_user(rpc, admin, "teacher"), active_user(rpc, admin, "student")
        course = rpc.create_project(admin, {"name": "cs101", "managers": [teacher["id"]],
                                            "quota": {"vcpus": 8}, "default_lease_hours": 24})
        assert course["quota"] == {"instances": 10, "vcpus": 8, "memory_mib": 20480,
                                   "volume_gib": 100, "floating_ips": 2, "volumes": 10}
        assert set(course) == {"id", "name", "description", "quota", "default_lease_hours",
                               "default_flavor", "default_image", "idle_policy", "created_at"}
        assert rpc.create_project(admin, {"name": "cs101", "managers": [teacher["id"]],
                                          "quota": {"vcpus": 8}, "default_lease_hours": 24}) == course
        as_teacher = login(rpc, "teacher", PASSWORD)
        assert as_teacher["projects"] == [{"id": course["id"], "role": "manager"}]

        member = rpc.add_member(as_teacher, course["id"], {"user": student["id"], "quota": {"vcpus": 2}})
        assert member["username"] == "student" and member["role"] == "member"
        assert member["quota"]["vcpus"] == 2
        with pytest.raises(Forbidden):
            rpc.add_member(as_teacher, course["id"], {"user": student["id"], "role": "manager"})
        as_student = login(rpc, "student", PASSWORD)
        assert rpc.get_project(as_student, course["id"]) == course
        assert [p["name"] for p in rpc.list_projects(as_student)] == ["cs101"]
        assert [m["username"] for m in rpc.list_members(as_teacher, course["id"])] == ["teacher", "student"]

        assert rpc.get_quota_limits(course["id"], student["id"]) == {
            "project": course["quota"],
            "user": {"instances": None, "vcpus": 2, "memory_mib": None, "volume_gib": None,
                     "floating_ips": None, "volumes": None}}
        for bad in (course["id"] + 100, "1", 2 ** 64):
            with pytest.raises(NotFound):
                rpc.get_quota_limits(bad, student["id"])

        FakeInstances.usage[course["id"]] = {
            "project": {"instances": 2, "vcpus": 3, "memory_mib": 1024},
            "users": {str(student["id"]): {"instances": 1, "vcpus": 1, "memory_mib": 512}}}
        FakeStorage.usage[course["id"]] = {
            "project": {"volumes": 2, "volume_gib": 7},
            "users": {str(student["id"]): {"volumes": 1, "volume_gib": 5}}}
        FakeNetwork.usage[course["id"]] = {"project": {"floating_ips": 2},
                                           "users": {str(student["id"]): {"floating_ips": 1}}}
        usage = rpc.get_usage(as_student, course["id"])
        assert usage["resources"]["floating_ips"] == {"limit": 2, "in_use": 2}   # the network service's count
        assert usage["mine"]["floating_ips"]["in_use"] == 1
        assert usage["resources"]["vcpus"] == {"limit": 8, "in_use": 3}
        assert usage["mine"]["vcpus"] == {"limit": 2, "in_use": 1}
        # The volumes' use is the storage service's count, beside the instances'.
        assert usage["resources"]["volume_gib"] == {"limit": 100, "in_use": 7}
        assert usage["resources"]["volumes"] == {"limit": 10, "in_use": 2}
        assert usage["mine"]["volumes"] == {"limit": None, "in_use": 1}
        with pytest.raises(Conflict) as err:
            rpc.delete_project(admin, course["id"])
        assert set(err.value.fields) == {"instances", "volumes"}  # the course's data volumes hold it too
        assert rpc.get_quota(as_student, course["id"])["vcpus"] == 8
        assert rpc.set_quota(admin, course["id"], {"vcpus": None})["vcpus"] is None

        FakeInstances.usage.clear()
        with pytest.raises(Conflict) as err:
            rpc.delete_project(admin, course["id"])
        assert err.value.fields == {"volumes": ["2 in use"]}
        FakeStorage.usage.clear()
        with pytest.raises(Forbidden):
            rpc.delete_project(as_teacher, course["id"])
        assert rpc.delete_project(admin, course["id"]) == {"deleted": True}
        assert rpc.delete_project(admin, course["id"]) == {"deleted": False}
        assert login(rpc, "student", PASSWORD)["projects"] == []


def test_hidden_or_missing_ids_are_not_found_and_requests_checked(accounts):
    with ServiceRpcProxy("accounts", accounts) as rpc:
        admin = login(rpc, "admin", ADMIN_PASSWORD)
        active_user(rpc, admin, "outsider")
        outsider = login(rpc, "outsider", PASSWORD)
        course = rpc.create_project(admin, {"name": "cs101"})
        for call in ("get_project", "get_quota", "get_usage", "list_members"):
            for project_id in (course["id"], course["id"] + 1, "x", 2 ** 64):
                with pytest.raises(NotFound):
                    getattr(rpc, call)(outsider, project_id)
        with pytest.raises(NotFound):
            rpc.update_project(outsider, course["id"], {"description": "mine"})
        with pytest.raises(Forbidden):
            rpc.create_project(outsider, {"name": "cs102"})
        with pytest.raises(InvalidInput) as err:
            rpc.create_project(admin, {"name": "cs102", "managers": [2 ** 64], "colour": "red"})
        assert set(err.value.fields) == {"managers", "colour"}
        with pytest.raises(InvalidInput) as err:
            rpc.add_member(admin, course["id"], {"user": 2 ** 63, "role": "owner"})
        assert set(err.value.fields) == {"user", "role"}
        with pytest.raises(NotFound):
            rpc.add_member(admin, course["id"], {"user": 2 ** 63 - 1})
        # An admin is told the truth, and ids that cannot name anything are simply not found.
        for bad in (2 ** 64, "1", 999999):
            for call, args in [("get_user", ()), ("suspend_user", ({},)), ("enable_user", ()),
                               ("delete_user", ({},)), ("reset_password", ()), ("list_tokens", ()),
                               ("approve_user", ({},)), ("reject_user", ({"reason": "x"},)),
                               ("get_key", ()), ("get_project", ()), ("list_members", ()),
                               ("remove_member", (1,)), ("update_member", (1, {})),
                               ("update_project", ({},)), ("get_quota", ()),
                               ("set_quota", ({"vcpus": 1},)), ("get_usage", ()),
                               ("add_member", ({"user": 1},))]:
                with pytest.raises(NotFound):
                    getattr(rpc, call)(admin, bad, *args)
            assert rpc.delete_project(admin, bad) == {"deleted": False}  # "already gone"
            assert rpc.remove_member(admin, 1, bad) == {"deleted": False}
            assert rpc.revoke_user_token(admin, 1, bad) == {"revoked": False}
        with pytest.raises(InvalidInput) as err:
            rpc.delete_user(admin, 1, {"transfer_to": 2 ** 64})
        assert set(err.value.fields) == {"transfer_to"}
        with pytest.raises(Conflict):
            rpc.delete_user(admin, admin["id"], {})
