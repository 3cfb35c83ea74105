"""`labcloud user ...`: usernames resolved to ids, the CSV import with its report, passwords."""
import json

USERS = [{"id": 7, "username": "ada", "email": "ada@example.org", "role": "admin", "status": "active"},
         {"id": 8, "username": "bob", "email": "bob@example.org", "role": "user", "status": "pending"}]
PROJECTS = [{"id": 3, "name": "os-2026"}]
CSV = b"username,email,full_name,course\ncy,cy@example.org,Cy Young,\ndee,not-an-email,Dee,\n"


def test_list_with_status_and_json(api, labcloud):
    api.reply("GET", "/users", USERS[1:])
    listed = labcloud("user", "list", "--status", "pending")
    assert listed.exit_code == 0, listed.output
    assert api.calls("GET", "/users")[-1]["args"] == {"status": "pending"}
    assert listed.stdout.splitlines()[1].split()[:3] == ["8", "bob", "bob@example.org"]
    assert json.loads(labcloud("user", "list", "--json").stdout) == USERS[1:]
    assert labcloud("user", "list", "--status", "bogus").exit_code == 2


def test_approve_by_username_into_a_project_by_name(api, labcloud):
    api.reply("GET", "/users", USERS)
    api.reply("GET", "/projects", PROJECTS)
    api.reply("POST", "/users/8/approve", dict(USERS[1], status="active"))
    done = labcloud("user", "approve", "bob", "--project", "os-2026")
    assert done.exit_code == 0, done.output
    assert done.stdout == "bob (user 8) is active\n"
    assert api.body("POST", "/users/8/approve") == {"project": 3}
    # an id needs no lookup
    before = len(api.calls("GET", "/users"))
    api.reply("POST", "/users/8/reject", dict(USERS[1], status="rejected"))
    assert labcloud("user", "reject", "8", "--reason", "not a student").exit_code == 0
    assert len(api.calls("GET", "/users")) == before
    assert api.body("POST", "/users/8/reject") == {"reason": "not a student"}
    assert labcloud("user", "reject", "8").exit_code == 2  # --reason is required


def test_delete_hands_over_to_another_user(api, labcloud):
    api.reply("GET", "/users", USERS)
    api.reply("DELETE", "/users/8", dict(USERS[1], status="deleted"))
    done = labcloud("user", "delete", "bob", "--transfer-to", "ada", "--yes")
    assert done.exit_code == 0, done.output
    assert api.calls("DELETE", "/users/8")[-1]["args"] == {"transfer_to": "7"}
    asked = labcloud("user", "delete", "bob", input="n\n")
    assert asked.exit_code == 1 and len(api.calls("DELETE", "/users/8")) == 1


def test_import_shows_the_report(api, labcloud, tmp_path):
    api.reply("GET", "/projects", PROJECTS)
    api.reply("POST", "/users/import", {"created": 2, "existing": 0, "errors": 0, "rows": [
        {"line": 2, "username": "cy", "result": "created", "message": "", "user_id": 11},
        {"line": 3, "username": "dee", "result": "created", "message": "", "user_id": 12}]})
    path = tmp_path / "class.csv"
    path.write_bytes(CSV)
    done = labcloud("user", "import", str(path), "--project", "os-2026")
    assert done.exit_code == 0, done.output
    sent = api.calls("POST", "/users/import")[-1]
    assert sent["body"] == CSV and sent["headers"]["Content-Type"].startswith("text/csv")
    assert sent["headers"]["Content-Length"] == str(len(CSV)) and sent["args"] == {"project": "3"}
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["LINE", "USERNAME", "RESULT", "USER_ID", "MESSAGE"]
    assert lines[1].split() == ["2", "cy", "created", "11", "-"]
    assert lines[-1] == "created 2, existing 0, errors 0"


def test_import_with_errors_names_the_lines_and_exits_1(api, labcloud, tmp_path):
    api.reply("POST", "/users/import", {"created": 0, "existing": 0, "errors": 1, "rows": [
        {"line": 2, "username": "cy", "result": "created", "message": ""},
        {"line": 3, "username": "dee", "result": "error", "message": "email: not a valid email address"}]})
    path = tmp_path / "class.csv"
    path.write_bytes(CSV)
    done = labcloud("user", "import", str(path))
    assert done.exit_code == 1
    assert api.calls("POST", "/users/import")[-1]["args"] == {}
    assert "dee" in done.stdout and done.stdout.splitlines()[-1] == "created 0, existing 0, errors 1"
    assert done.stderr.splitlines() == ["error: line 3: dee: email: not a valid email address",
                                        "nothing was imported: fix these lines and import the file again"]
    as_json = labcloud("user", "import", str(path), "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["errors"] == 1


def test_project_import_uses_the_same_report(api, labcloud):
    api.reply("GET", "/projects", PROJECTS)
    api.reply("POST", "/projects/3/members/import", {"created": 0, "existing": 1, "errors": 0, "rows": [
        {"line": 2, "username": "cy", "result": "existing", "message": "", "user_id": 11}]})
    done = labcloud("project", "import", "os-2026", "-", input=CSV)  # '-': stdin
    assert done.exit_code == 0, done.output
    assert api.calls("POST", "/projects/3/members/import")[-1]["body"] == CSV
    assert done.stdout.splitlines()[-1] == "created 0, existing 1, errors 0"


def test_create_without_password_shows_the_link(api, labcloud):
    api.reply("GET", "/projects", PROJECTS)
    api.reply("POST", "/admin/users", {"id": 13, "username": "eve", "status": "active",
                                       "password_link": "https://cloud/set-password?token=x"}, 201)
    done = labcloud("user", "create", "eve", "--email", "eve@example.org", "--project", "os-2026")
    assert done.exit_code == 0, done.output
    assert api.body("POST", "/admin/users") == {"username": "eve", "email": "eve@example.org", "project": 3}
    assert "https://cloud/set-password?token=x" in done.stdout


def test_passwd_changes_my_password_and_forgets_the_token(api, labcloud, config_home):
    api.reply("POST", "/tokens", {"id": 1, "token": "s3cret", "expires_at": "2031-01-01T00:00:00+00:00",
                                  "user_id": 7}, 201)
    labcloud("login", "-u", "ada", "--password-stdin", input="old password\n", token=None)
    api.reply("PUT", "/users/7/password", {"changed": True})
    done = labcloud("user", "passwd", input="old password\nnew password\nnew password\n", token=None)
    assert done.exit_code == 0, done.output
    assert api.body("PUT", "/users/7/password") == {"current_password": "old password", "password": "new password"}
    assert "new password" not in done.output
    stored = json.loads((config_home / "labcloud" / "config.json").read_text())
    assert "token" not in stored


def test_reset_password_prints_the_link(api, labcloud):
    api.reply("GET", "/users", USERS)
    api.reply("POST", "/users/8/password-reset", {"password_link": "https://cloud/set-password?token=y",
                                                  "expires_at": "2031-01-01T00:00:00+00:00"})
    done = labcloud("user", "reset-password", "bob")
    assert done.exit_code == 0 and "https://cloud/set-password?token=y" in done.stdout


def test_import_progress_on_a_terminal(api, labcloud, tmp_path):
    api.reply("POST", "/users/import", {"created": 1, "existing": 0, "errors": 0, "rows": [
        {"line": 2, "username": "cy", "result": "created", "message": "", "user_id": 11}]})
    path = tmp_path / "big.csv"
    rows = b"".join(b"u%05d,u%05d@example.org,U,\n" % (i, i) for i in range(5000))
    path.write_bytes(b"username,email,full_name,course\n" + rows)
    done = labcloud("user", "import", str(path), env={"TTY_COMPATIBLE": "1"})
    assert done.exit_code == 0, done.output
    assert api.calls("POST", "/users/import")[-1]["body"] == path.read_bytes()
    assert "cy" in done.stdout
