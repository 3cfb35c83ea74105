"""Courses, roles, quotas and access control, over HTTP against the running system (every service
a process, libvirt's test driver): each rule of the issue, as a user would meet it."""
import datetime as dt
import time
import uuid

import pytest

from imagebuilder.bareboot import generate_ed25519_key, public_key_line
from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user, tiny_image
from tests.e2e.conftest import stack_on

# The gateway's bound (TOKEN_CACHE_SECONDS, default 5 s) set lower here to keep the suite short: the
# tests measure that revocations and role changes take effect within whatever the bound is.
CACHE_SECONDS = 2
ENV = {"HEARTBEAT_INTERVAL": "1", "STATS_INTERVAL": "1", "METRICS_STEP": "1",
       "TOKEN_CACHE_SECONDS": str(CACHE_SECONDS), "RATE_LIMIT_PER_ADDRESS": "1000"}


@pytest.fixture(scope="module")
def stack(rabbit_node, vhosts):
    with stack_on(rabbit_node, vhosts, ENV) as running:
        yield running


@pytest.fixture(scope="module")
def admin(stack):
    return Api(stack.url).login("admin", ADMIN_PASSWORD)


@pytest.fixture
def anon(stack):
    return Api(stack.url)


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def error_of(response, status):
    assert response.status_code == status, response.text
    return response.json()["error"]


def create_body(api, **extra):
    flavor = min(api.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    image = tiny_image(api)
    return dict({"name": unique("vm-"), "flavor": flavor["id"], "image": image["id"], "key": api.key}, **extra)


def running_instance(api, **extra):
    made = api.call("POST", "/instances", 202, json=create_body(api, **extra)).json()
    api.wait_for(f"/instances/{made['id']}", lambda r: r.json()["state"] == "running", timeout=60)
    return made


def wait_until_refused(api, path="/keys", bound=CACHE_SECONDS + 1.5):
    """Seconds until `api`'s token is refused (401); fails if that takes longer than `bound`."""
    started = time.monotonic()
    while time.monotonic() - started < bound + 5:
        if api.call("GET", path).status_code == 401:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError("the token kept working")


# -- sign-up, approval, rejection ----------------------------------------------------------------

def test_sign_up_is_pending_until_approved_and_a_rejection_says_why(anon, admin):
    name = unique("s")
    made = anon.call("POST", "/users", 201, json={"username": name, "email": f"{name}@lab.example",
                                                 "password": "a fine passphrase"}).json()
    assert made["status"] == "pending"
    assert dt.datetime.fromisoformat(made["created_at"]).utcoffset() == dt.timedelta(0)  # RFC 3339
    assert "awaits approval" in error_of(anon.call("POST", "/tokens", json={
        "username": name, "password": "a fine passphrase"}), 403)["message"]
    pending = [u["username"] for u in admin.call("GET", "/users?status=pending", 200).json()]
    assert name in pending
    rejected = admin.call("POST", f"/users/{made['id']}/reject", 200, json={"reason": "not in any course"}).json()
    assert rejected["status"] == "rejected" and rejected["reason"] == "not in any course"
    refusal = error_of(anon.call("POST", "/tokens", json={"username": name, "password": "a fine passphrase"}), 403)
    assert "not in any course" in refusal["message"]


def test_password_policy_names_the_field(anon):
    name = unique("p")
    for password, why in ((f"{name}-secret-1", "username"), ("short", "10"), ("abababababababab", "different")):
        error = error_of(anon.call("POST", "/users", json={"username": name, "email": f"{name}@lab.example",
                                                          "password": password}), 400)
        assert set(error["fields"]) == {"password"} and why in str(error["fields"]["password"]), error


def test_an_admin_creates_a_user_who_sets_the_password_once(anon, admin):
    name = unique("c")
    made = admin.call("POST", "/admin/users", 201, json={"username": name, "email": f"{name}@lab.example"}).json()
    assert made["status"] == "active" and "/set-password?token=" in made["password_link"]
    token = made["password_link"].split("token=", 1)[1]
    anon.call("POST", "/password-setup", 200, json={"token": token, "password": "my own passphrase"})
    anon.login(name, "my own passphrase")
    again = anon.call("POST", "/password-setup", json={"token": token, "password": "another passphrase"})
    assert again.status_code in (400, 404), again.text  # a link works once


# -- CSV import ----------------------------------------------------------------------------------

def test_csv_import_is_all_or_nothing_with_line_numbers(admin):
    course = admin.call("POST", "/projects", 201, json={"name": unique("csv-")}).json()
    a, b = unique("i"), unique("i")
    bad = (f"username,email,full_name,course\n{a},{a}@lab.example,Ada A,{course['name']}\n"
           f"{b},not-an-email,Bob B,{course['name']}\n{b}x,{b}x@lab.example,C,no-such-course\n")
    response = admin.call("POST", "/users/import", data=bad.encode(), headers={"Content-Type": "text/csv"})
    error = error_of(response, 400)
    messages = " ".join(error["fields"]["csv"])
    assert "line 3" in messages and "line 4" in messages and "line 2" not in messages
    assert not [u for u in admin.call("GET", "/users", 200).json() if u["username"] == a]  # nothing written

    good = f"username,email,full_name,course\n{a},{a}@lab.example,Ada A,{course['name']}\n"
    report = admin.call("POST", "/users/import", 200, data=good.encode(),
                        headers={"Content-Type": "text/csv"}).json()
    assert report["created"] == 1 and report["rows"][0]["line"] == 2 and report["rows"][0]["result"] == "created"
    again = admin.call("POST", "/users/import", 200, data=good.encode(), headers={"Content-Type": "text/csv"}).json()
    assert again["created"] == 0 and again["rows"][0]["result"] == "existing"
    members = admin.call("GET", f"/projects/{course['id']}/members", 200).json()
    assert [m["username"] for m in members] == [a]


def test_a_manager_imports_into_their_course_only(stack, admin):
    mine = admin.call("POST", "/projects", 201, json={"name": unique("mine-")}).json()
    other = admin.call("POST", "/projects", 201, json={"name": unique("other-")}).json()
    teacher = approved_user(stack.url, admin, unique("t"), project=mine["id"])
    admin.call("POST", f"/projects/{mine['id']}/members", 201, json={"user": teacher.user_id, "role": "manager"})
    time.sleep(CACHE_SECONDS + 0.5)  # the documented bound for a role change to reach the gateway
    student = unique("st")
    rows = f"username,email,full_name\n{student},{student}@lab.example,Stu Dent\n".encode()
    teacher.call("POST", f"/projects/{mine['id']}/members/import", 200, data=rows,
                 headers={"Content-Type": "text/csv"})
    refused = teacher.call("POST", f"/projects/{other['id']}/members/import", data=rows,
                           headers={"Content-Type": "text/csv"})
    assert refused.status_code in (403, 404), refused.text
    assert teacher.call("GET", f"/projects/{other['id']}/members").status_code in (403, 404)


# -- tokens: revocation within the cache bound ---------------------------------------------------

def test_suspension_stops_every_token_within_the_cache_bound(stack, admin, anon):
    user = approved_user(stack.url, admin, unique("z"))
    second = anon.login(user.username, user.password)
    assert user.call("GET", "/keys").status_code == 200  # cached now
    admin.call("POST", f"/users/{user.user_id}/suspend", 200, json={"reason": "exam period"})
    assert wait_until_refused(user) <= CACHE_SECONDS + 1.5
    assert wait_until_refused(second) <= CACHE_SECONDS + 1.5
    refusal = error_of(anon.call("POST", "/tokens", json={"username": user.username, "password": user.password}), 403)
    assert "suspended" in refusal["message"]
    admin.call("POST", f"/users/{user.user_id}/enable", 200)
    anon.login(user.username, user.password).call("GET", "/keys", 200)


def test_logout_is_immediate_and_password_change_revokes_every_token(stack, admin, anon):
    user = approved_user(stack.url, admin, unique("l"))
    other_session = anon.login(user.username, user.password)
    tokens = user.call("GET", f"/users/{user.user_id}/tokens", 200).json()
    assert len(tokens) == 2 and all("token" not in t for t in tokens)
    assert {t["address"] for t in tokens} == {"127.0.0.1"}
    user.call("DELETE", "/tokens/current", 200)
    assert user.call("GET", "/keys").status_code == 401  # this gateway forgot it at once
    assert other_session.call("GET", "/keys").status_code == 200

    wrong = other_session.call("PUT", f"/users/{user.user_id}/password",
                               json={"current_password": "not it at all", "password": "a brand new one"})
    assert wrong.status_code in (400, 401, 403) and "current_password" in str(wrong.json()), wrong.text
    other_session.call("PUT", f"/users/{user.user_id}/password", 200,
                       json={"current_password": user.password, "password": "a brand new one"})
    assert wait_until_refused(other_session) <= CACHE_SECONDS + 1.5
    anon.login(user.username, "a brand new one")


def test_an_admin_reset_revokes_tokens_and_gives_a_link(stack, admin, anon):
    user = approved_user(stack.url, admin, unique("r"))
    link = admin.call("POST", f"/users/{user.user_id}/password-reset", 200).json()
    assert wait_until_refused(user) <= CACHE_SECONDS + 1.5
    token = link["password_link"].split("token=", 1)[1]
    anon.call("POST", "/password-setup", 200, json={"token": token, "password": "reset passphrase"})
    anon.login(user.username, "reset passphrase")


def test_token_requests_are_rate_limited_per_username(anon, admin, stack):
    user = approved_user(stack.url, admin, unique("h"))
    answers = [anon.call("POST", "/tokens", json={"username": user.username, "password": "wrong guess"})
               for _ in range(12)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited and all(a.status_code == 401 for a in answers[:9]), [a.status_code for a in answers]
    assert 1 <= int(limited[0].headers["Retry-After"]) <= 60
    # Even the right password waits: the limit is per username, before any password is checked.
    assert anon.call("POST", "/tokens", json={"username": user.username, "password": user.password}).status_code == 429


# -- projects, roles, teachers -------------------------------------------------------------------

@pytest.fixture(scope="module")
def course(stack, admin):
    """A course with a teacher and two students, each with an SSH key, and another course."""
    project = admin.call("POST", "/projects", 201, json={"name": unique("os-"), "quota": {
        "instances": 6, "vcpus": 12, "memory_mib": 8192}}).json()
    other = admin.call("POST", "/projects", 201, json={"name": unique("net-")}).json()
    teacher = approved_user(stack.url, admin, unique("teach"), project=project["id"])
    admin.call("POST", f"/projects/{project['id']}/members", 201, json={"user": teacher.user_id, "role": "manager"})
    students = [approved_user(stack.url, admin, unique("stud"), project=project["id"]) for _ in range(2)]
    other_teacher = approved_user(stack.url, admin, unique("oteach"), project=other["id"])
    admin.call("POST", f"/projects/{other['id']}/members", 201, json={"user": other_teacher.user_id, "role": "manager"})
    time.sleep(CACHE_SECONDS + 0.5)  # the new roles reach the gateways' caches
    return {"project": project, "other": other, "teacher": teacher, "students": students,
            "other_teacher": other_teacher}


def test_managers_add_members_but_only_admins_name_managers(stack, admin, course):
    teacher, project = course["teacher"], course["project"]
    newcomer = approved_user(stack.url, admin, unique("new"))
    added = teacher.call("POST", f"/projects/{project['id']}/members", 201,
                         json={"user": newcomer.user_id, "role": "member"}).json()
    assert added["role"] == "member"
    assert error_of(teacher.call("POST", f"/projects/{project['id']}/members",
                                 json={"user": newcomer.user_id, "role": "manager"}), 403)
    student = course["students"][0]
    assert student.call("POST", f"/projects/{project['id']}/members",
                        json={"user": newcomer.user_id}).status_code == 403
    teacher.call("DELETE", f"/projects/{project['id']}/members/{newcomer.user_id}", 200)
    # A project one is not in looks missing.
    assert course["other_teacher"].call("GET", f"/projects/{project['id']}").status_code == 404


def test_a_teacher_acts_on_the_course_instances_and_never_on_another_course(course):
    student = course["students"][0]
    made = running_instance(student, project=course["project"]["id"])
    classmate, teacher, other_teacher = course["students"][1], course["teacher"], course["other_teacher"]
    assert classmate.call("GET", f"/instances/{made['id']}").status_code == 404
    assert other_teacher.call("POST", f"/instances/{made['id']}/stop").status_code == 404
    assert made["id"] in [i["id"] for i in teacher.call("GET", "/instances", 200).json()]
    assert made["id"] not in [i["id"] for i in classmate.call("GET", "/instances", 200).json()]
    teacher.call("POST", f"/instances/{made['id']}/stop", 202)
    student.wait_for(f"/instances/{made['id']}", lambda r: r.json()["state"] == "stopped")
    teacher.call("POST", f"/instances/{made['id']}/start", 202)
    student.wait_for(f"/instances/{made['id']}", lambda r: r.json()["state"] == "running")
    teacher.call("DELETE", f"/instances/{made['id']}", 202)
    student.wait_for(f"/instances/{made['id']}", lambda r: r.status_code == 404)


def test_quota_usage_and_a_per_user_cap(admin, course):
    project, student, teacher = course["project"], course["students"][1], course["teacher"]
    assert teacher.call("PUT", f"/projects/{project['id']}/quota", json={"instances": 100}).status_code == 403
    admin.call("PATCH", f"/projects/{project['id']}/members/{student.user_id}", 200,
               json={"quota": {"instances": 1}})
    first = running_instance(student, project=project["id"])
    error = error_of(student.call("POST", "/instances", json=create_body(student, project=project["id"])), 403)
    assert error["code"] == "quota_exceeded" and "instances" in error["fields"]
    assert "limit 1" in error["fields"]["instances"][0] and "in use 1" in error["fields"]["instances"][0]
    usage = student.call("GET", f"/projects/{project['id']}/usage", 200).json()
    assert usage["mine"]["instances"] == {"limit": 1, "in_use": 1}
    assert usage["resources"]["instances"]["limit"] == 6 and usage["resources"]["instances"]["in_use"] >= 1
    assert course["other_teacher"].call("GET", f"/projects/{project['id']}/usage").status_code == 404
    student.call("DELETE", f"/instances/{first['id']}", 202)
    student.wait_for(f"/instances/{first['id']}", lambda r: r.status_code == 404)
    student.call("POST", "/instances", 202, json=create_body(student, project=project["id"]))


def test_stopped_instances_free_compute_quota_and_start_is_checked(admin, stack):
    project = admin.call("POST", "/projects", 201, json={"name": unique("tight-")}).json()
    user = approved_user(stack.url, admin, unique("q"), project=project["id"])
    flavor = min(user.call("GET", "/flavors", 200).json(), key=lambda f: f["memory_mib"])
    admin.call("PUT", f"/projects/{project['id']}/quota", 200, json={"vcpus": flavor["vcpus"], "instances": 5})
    first = running_instance(user)
    error_of(user.call("POST", "/instances", json=create_body(user)), 403)
    user.call("POST", f"/instances/{first['id']}/stop", 202)
    user.wait_for(f"/instances/{first['id']}", lambda r: r.json()["state"] == "stopped")
    second = running_instance(user)
    error = error_of(user.call("POST", f"/instances/{first['id']}/start"), 403)
    assert error["code"] == "quota_exceeded" and set(error["fields"]) >= {"vcpus"}
    user.call("DELETE", f"/instances/{second['id']}", 202)


def test_a_user_in_several_projects_names_one(stack, admin):
    first = admin.call("POST", "/projects", 201, json={"name": unique("a-")}).json()
    second = admin.call("POST", "/projects", 201, json={"name": unique("b-")}).json()
    user = approved_user(stack.url, admin, unique("m"), project=first["id"])
    admin.call("POST", f"/projects/{second['id']}/members", 201, json={"user": user.user_id})
    time.sleep(CACHE_SECONDS + 0.5)
    error = error_of(user.call("POST", "/instances", json=create_body(user)), 400)
    assert set(error["fields"]) == {"project"}
    made = user.call("POST", "/instances", 202, json=create_body(user, project=second["id"])).json()
    assert made["project"] == second["id"]
    outsider = admin.call("POST", "/projects", 201, json={"name": unique("c-")}).json()
    assert user.call("POST", "/instances", json=create_body(user, project=outsider["id"])).status_code in (403, 404)


# -- keys ----------------------------------------------------------------------------------------

def test_keys_are_checked_generated_once_and_shared_with_a_course(stack, admin, course):
    classmate, student = course["students"]  # (the second one is capped at one instance, in use)
    for bad in ("ssh-rsa AAAA", "ssh-dss AAAAB3NzaC1kc3MAAACBAP", "hello"):
        error = error_of(student.call("POST", "/keys", json={"name": unique("k"), "public_key": bad}), 400)
        assert set(error["fields"]) == {"public_key"}
    generated = student.call("POST", "/keys/generate", 201, json={"name": unique("gen")}).json()
    assert generated["private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    shown = student.call("GET", f"/keys/{generated['id']}", 200).json()
    assert "private_key" not in shown and shown["public_key"] == generated["public_key"]
    shared = student.call("POST", "/keys", 201, json={
        "name": unique("lab"), "public_key": public_key_line(generate_ed25519_key()),
        "project": course["project"]["id"]}).json()
    assert shared["id"] in [k["id"] for k in classmate.call("GET", "/keys", 200).json()]
    assert classmate.call("GET", f"/keys/{generated['id']}").status_code == 404  # not shared
    made = classmate.call("POST", "/instances", 202, json=dict(
        create_body(classmate, project=course["project"]["id"]), key=shared["id"])).json()
    assert made["key"] == shared["id"]
    classmate.call("DELETE", f"/instances/{made['id']}", 202)
    assert classmate.call("DELETE", f"/keys/{shared['id']}").status_code in (403, 404)


# -- deleting users ------------------------------------------------------------------------------

def test_deleting_a_user_hands_everything_over_or_deletes_it(stack, admin, anon):
    project = admin.call("POST", "/projects", 201, json={"name": unique("del-")}).json()
    leaver = approved_user(stack.url, admin, unique("lv"), project=project["id"])
    heir = approved_user(stack.url, admin, unique("hr"), project=project["id"])
    kept = running_instance(leaver)
    admin.call("DELETE", f"/users/{leaver.user_id}?transfer_to={heir.user_id}", 200)
    heir.wait_for(f"/instances/{kept['id']}", lambda r: r.status_code == 200 and r.json()["user_id"] == heir.user_id)
    assert wait_until_refused(leaver) <= CACHE_SECONDS + 1.5
    assert error_of(anon.call("POST", "/tokens", json={"username": leaver.username, "password": leaver.password}),
                    401)

    gone = approved_user(stack.url, admin, unique("gn"), project=project["id"])
    doomed = running_instance(gone)
    admin.call("DELETE", f"/users/{gone.user_id}", 200)
    admin.wait_for(f"/instances/{doomed['id']}", lambda r: r.status_code == 404, timeout=60)
    assert admin.call("GET", "/instances?include_deleted=true", 200).json()
    assert not [k for k in admin.call("GET", "/keys", 200).json() if k["user_id"] == gone.user_id]


def test_an_admin_cannot_lock_themself_out(admin):
    me = admin.call("GET", "/users?status=active", 200).json()
    admin_id = next(u["id"] for u in me if u["username"] == "admin")
    for method, path in (("POST", f"/users/{admin_id}/suspend"), ("DELETE", f"/users/{admin_id}")):
        assert admin.call(method, path, json={} if method == "POST" else None).status_code == 409
    admin.call("GET", "/keys", 200)


# -- audit ---------------------------------------------------------------------------------------

def test_the_audit_log_records_state_changes_and_only_admins_read_it(stack, admin, course):
    since = dt.datetime.now(dt.timezone.utc).isoformat()
    student = course["students"][0]
    refused = student.call("POST", f"/projects/{course['other']['id']}/members", json={"user": student.user_id})
    assert refused.status_code in (403, 404)
    student.call("POST", "/keys/generate", 201, json={"name": unique("aud")})
    assert student.call("GET", "/audit").status_code == 403

    def records():
        return admin.call("GET", f"/audit?user={student.user_id}&since={since.replace('+', '%2B')}", 200).json()
    found = admin.wait_for(f"/audit?user={student.user_id}&since={since.replace('+', '%2B')}",
                           lambda r: len(r.json()) >= 2, timeout=20).json()
    assert [r["action"] for r in found[:2]] == ["generate_key", "add_member"]  # newest first
    newest, oldest = found[0], found[1]
    assert newest["result"] == "success" and newest["status"] == 201 and newest["address"] == "127.0.0.1"
    assert oldest["result"] == "error" and oldest["project_id"] == course["other"]["id"]
    assert records() == found
    by_project = admin.call("GET", f"/audit?project={course['other']['id']}", 200).json()
    assert any(r["id"] == oldest["id"] for r in by_project)

