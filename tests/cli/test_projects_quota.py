"""`labcloud project ...` and `labcloud quota ...`: names resolved to ids, only the given fields
sent, errors as one line naming the field, --json as the API answered."""
import json

PROJECTS = [{"id": 3, "name": "os-2026", "description": "Operating systems", "idle_policy": "suspend"},
            {"id": 4, "name": "42", "description": "a name that is all digits"},
            {"id": 42, "name": "nets", "description": ""}]


def test_project_list_table_and_json(api, labcloud):
    api.reply("GET", "/projects", PROJECTS)
    table = labcloud("project", "list")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "DESCRIPTION", "LEASE_HOURS", "IDLE_POLICY"]
    assert lines[1].split()[:2] == ["3", "os-2026"] and lines[1].split()[-1] == "suspend"
    as_json = labcloud("project", "list", "--json")
    assert json.loads(as_json.stdout) == PROJECTS


def test_a_project_is_named_by_name_or_id(api, labcloud):
    api.reply("GET", "/projects", PROJECTS)
    api.reply("GET", "/projects/3", PROJECTS[0])
    api.reply("GET", "/projects/4", PROJECTS[1])
    api.reply("GET", "/projects/42", PROJECTS[2])
    assert json.loads(labcloud("project", "show", "os-2026", "--json").stdout)["id"] == 3
    assert json.loads(labcloud("project", "show", "42", "--json").stdout)["id"] == 4  # a name first
    assert json.loads(labcloud("project", "show", "3", "--json").stdout)["id"] == 3   # then an id
    shown = labcloud("project", "show", "nets")
    assert shown.stdout.splitlines()[0].split() == ["id", "42"]
    missing = labcloud("project", "show", "nope")
    assert missing.exit_code == 1 and missing.stderr == "error: no project named nope\n"


def test_create_sends_settings_managers_and_quota_resolved(api, labcloud):
    api.reply("GET", "/users", [{"id": 7, "username": "ada"}, {"id": 8, "username": "bob"}])
    api.reply("GET", "/flavors", [{"id": 2, "name": "small"}])
    api.reply("POST", "/projects", {"id": 5, "name": "db-2026"}, 201)
    done = labcloud("project", "create", "db-2026", "--description", "Databases", "--manager", "ada",
                    "--manager", "8", "--default-flavor", "small", "--idle-policy", "none",
                    "--vcpus", "16", "--floating-ips", "unlimited")
    assert done.exit_code == 0, done.output
    assert done.stdout == "created project db-2026 (5)\n"
    assert api.body("POST", "/projects") == {
        "name": "db-2026", "description": "Databases", "default_flavor": 2, "idle_policy": "none",
        "managers": [7, 8], "quota": {"vcpus": 16, "floating_ips": None}}


def test_an_api_400_is_one_line_naming_the_fields(api, labcloud):
    api.error("POST", "/projects", 400, "invalid input",
              {"name": ["already taken"], "default_lease_hours": ["must be at most 720"]})
    done = labcloud("project", "create", "os-2026", "--default-lease-hours", "1000")
    assert done.exit_code == 1
    assert done.stdout == ""
    assert done.stderr == "error: name: already taken; default_lease_hours: must be at most 720\n"


def test_other_errors_name_the_status(api, labcloud):
    api.reply("GET", "/projects", PROJECTS)
    api.error("DELETE", "/projects/3", 409, "the project still has 2 instances", code="conflict")
    done = labcloud("project", "delete", "os-2026", "--yes")
    assert done.exit_code == 1
    assert done.stderr == "error: the project still has 2 instances (HTTP 409)\n"
    refused = labcloud("project", "delete", "os-2026", input="n\n")
    assert refused.exit_code == 1 and len(api.calls("DELETE", "/projects/3")) == 1  # not asked again


def test_update_sends_only_what_is_given(api, labcloud):
    api.reply("GET", "/projects", PROJECTS)
    api.reply("PATCH", "/projects/3", dict(PROJECTS[0], default_lease_hours=48))
    done = labcloud("project", "update", "os-2026", "--default-lease-hours", "48")
    assert done.exit_code == 0, done.output
    assert api.body("PATCH", "/projects/3") == {"default_lease_hours": 48}
    nothing = labcloud("project", "update", "os-2026")
    assert nothing.exit_code == 2 and "nothing to change" in nothing.stderr


def test_members(api, labcloud):
    api.reply("GET", "/projects", PROJECTS)
    api.reply("GET", "/projects/3/members", [{"user_id": 7, "username": "ada", "role": "manager"},
                                              {"user_id": 8, "username": "bob", "role": "member"}])
    listed = labcloud("project", "members", "os-2026")
    assert [line.split()[:3] for line in listed.stdout.splitlines()] == [
        ["USER_ID", "USERNAME", "ROLE"], ["7", "ada", "manager"], ["8", "bob", "member"]]

    api.reply("GET", "/users", [{"id": 9, "username": "cy"}])
    api.reply("POST", "/projects/3/members", {"user_id": 9, "username": "cy", "role": "manager"}, 201)
    added = labcloud("project", "add-member", "os-2026", "cy", "--role", "manager")
    assert added.exit_code == 0, added.output
    assert api.body("POST", "/projects/3/members") == {"user": 9, "role": "manager"}

    # a manager cannot list users: removing a member finds them among the members
    api.error("GET", "/users", 403, "only an admin may do this", code="forbidden")
    api.reply("DELETE", "/projects/3/members/8", None, 204)
    removed = labcloud("project", "remove-member", "os-2026", "bob")
    assert removed.exit_code == 0, removed.output
    assert api.calls("DELETE", "/projects/3/members/8")
    unknown = labcloud("project", "add-member", "os-2026", "zed")
    assert unknown.exit_code == 1 and "give the user's id" in unknown.stderr


def test_quota_set_sends_only_the_given_limits_and_null_for_unlimited(api, labcloud):
    api.reply("GET", "/projects", PROJECTS)
    api.reply_with("PUT", "/projects/3/quota", lambda seen: (200, {
        "instances": None, "vcpus": 8, "memory_mib": 16384, "volume_gib": 100, "floating_ips": 2}, None))
    done = labcloud("quota", "set", "os-2026", "--vcpus", "8", "--instances", "unlimited")
    assert done.exit_code == 0, done.output
    assert api.body("PUT", "/projects/3/quota") == {"instances": None, "vcpus": 8}
    assert [line.split() for line in done.stdout.splitlines()][:3] == [
        ["RESOURCE", "LIMIT"], ["instances", "unlimited"], ["vcpus", "8"]]

    bad = labcloud("quota", "set", "os-2026", "--vcpus", "lots")
    assert bad.exit_code == 2 and "neither a whole number" in bad.stderr
    empty = labcloud("quota", "set", "os-2026")
    assert empty.exit_code == 2 and "give at least one limit" in empty.stderr
    assert len(api.calls("PUT", "/projects/3/quota")) == 1


def test_quota_show_and_usage(api, labcloud):
    api.reply("GET", "/projects", PROJECTS)
    quota = {"instances": 10, "vcpus": None, "memory_mib": 8192, "volume_gib": 0, "floating_ips": 1}
    api.reply("GET", "/projects/3/quota", quota)
    shown = labcloud("quota", "show", "os-2026")
    assert shown.stdout.splitlines()[2].split() == ["vcpus", "unlimited"]
    assert json.loads(labcloud("quota", "show", "3", "--json").stdout) == quota

    usage = {"project_id": 3,
             "resources": {"instances": {"limit": 10, "in_use": 4}, "vcpus": {"limit": None, "in_use": 6}},
             "mine": {"instances": {"limit": 2, "in_use": 1}}}
    api.reply("GET", "/projects/3/usage", usage)
    table = labcloud("quota", "usage", "os-2026")
    assert [line.split() for line in table.stdout.splitlines()] == [
        ["RESOURCE", "IN_USE", "LIMIT", "YOURS"], ["instances", "4", "10", "1", "of", "2"],
        ["vcpus", "6", "unlimited", "-"]]
    assert json.loads(labcloud("quota", "usage", "os-2026", "--json").stdout) == usage
