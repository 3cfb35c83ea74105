"""`labcloud login|logout|signup|token`, the config file and what overrides it, and how an
expired token, a rate limit and a connection failure are told."""
import json
import os
import stat

EXPIRES = "2031-01-01T10:00:00+00:00"


def token_answer(token="s3cret", user_id=7, token_id=41):
    return {"id": token_id, "token": token, "expires_at": EXPIRES, "user_id": user_id}


def config_file(config_home):
    return config_home / "labcloud" / "config.json"


def test_login_keeps_the_token_in_a_file_only_the_user_can_read(api, labcloud, config_home):
    api.reply("POST", "/tokens", token_answer(), 201)
    done = labcloud("login", "--url", api.url, "--username", "ada", "--password-stdin",
                    input="correct horse\n", token=None, env={"LABCLOUD_URL": ""})
    assert done.exit_code == 0, done.output
    assert api.body("POST", "/tokens") == {"username": "ada", "password": "correct horse"}
    assert "Authorization" not in api.calls("POST", "/tokens")[0]["headers"]
    path = config_file(config_home)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    stored = json.loads(path.read_text())
    assert {k: stored[k] for k in ("url", "token", "expires_at", "username")} == {
        "url": api.url, "token": "s3cret", "expires_at": EXPIRES, "username": "ada"}
    assert "s3cret" not in done.stdout  # the secret is not printed

    # later commands use it, with no environment at all
    api.reply("GET", "/projects", [])
    listed = labcloud("project", "list", token=None, env={"LABCLOUD_URL": ""})
    assert listed.exit_code == 0, listed.output
    assert api.calls("GET", "/projects")[-1]["headers"]["Authorization"] == "Bearer s3cret"


def test_login_asks_the_password_without_echo_and_reuses_the_last_username(api, labcloud, config_home):
    api.reply("POST", "/tokens", token_answer(), 201)
    assert labcloud("login", "-u", "ada", input="pw1\n", token=None).exit_code == 0
    again = labcloud("login", input="pw2\n", token=None)
    assert again.exit_code == 0, again.output
    assert api.body("POST", "/tokens") == {"username": "ada", "password": "pw2"}
    assert "pw2" not in again.output  # hidden input


def test_the_environment_overrides_the_file(api, labcloud, config_home):
    api.reply("POST", "/tokens", token_answer(), 201)
    labcloud("login", "-u", "ada", "--password-stdin", input="pw\n", token=None)
    api.reply("GET", "/keys", [])
    assert labcloud("key", "list", token="from-env").exit_code == 0
    assert api.calls("GET", "/keys")[-1]["headers"]["Authorization"] == "Bearer from-env"

    # Another gateway named by LABCLOUD_URL never gets the file's token.
    other = labcloud("key", "list", token=None, env={"LABCLOUD_URL": "http://127.0.0.1:9"})
    assert other.exit_code == 1
    assert other.stderr.strip() == ("error: not logged in to http://127.0.0.1:9: run `labcloud login` "
                                    "(or set LABCLOUD_TOKEN)")


def test_an_expired_or_revoked_token_says_to_log_in_again(api, labcloud):
    api.error("GET", "/projects", 401, "the token has expired", code="unauthorized")
    done = labcloud("project", "list")
    assert done.exit_code == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: your session has ended (the token has expired): run `labcloud login`"]


def test_a_stored_token_past_its_expiry_is_named(api, labcloud, config_home):
    path = config_file(config_home)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"url": api.url, "token": "old", "username": "ada",
                                "expires_at": "2001-01-01T00:00:00+00:00"}))
    api.error("GET", "/keys", 401, "unknown token", code="unauthorized")
    done = labcloud("key", "list", token=None)
    assert done.exit_code == 1
    assert done.stderr == ("error: your session has ended (your token expired at 2001-01-01T00:00:00+00:00): "
                           "run `labcloud login`\n")


def test_wrong_password_and_rate_limit_at_login(api, labcloud):
    api.error("POST", "/tokens", 401, "wrong username or password", code="unauthorized")
    wrong = labcloud("login", "-u", "ada", "--password-stdin", input="nope\n", token=None)
    assert wrong.exit_code == 1
    assert wrong.stderr == "error: wrong username or password (HTTP 401)\n"  # no login hint here

    api.error("POST", "/tokens", 429, "too many attempts", code="rate_limited", headers={"Retry-After": "30"})
    limited = labcloud("login", "-u", "ada", "--password-stdin", input="nope\n", token=None)
    assert limited.exit_code == 1
    assert limited.stderr == "error: too many attempts: try again in 30 s (Retry-After: 30)\n"


def test_logout_revokes_and_forgets_the_token(api, labcloud, config_home):
    api.reply("POST", "/tokens", token_answer(), 201)
    labcloud("login", "-u", "ada", "--password-stdin", input="pw\n", token=None)
    api.reply("DELETE", "/tokens/current", {"revoked": True})
    done = labcloud("logout", token=None)
    assert done.exit_code == 0, done.output
    assert api.calls("DELETE", "/tokens/current")[0]["headers"]["Authorization"] == "Bearer s3cret"
    stored = json.loads(config_file(config_home).read_text())
    assert "token" not in stored and stored["username"] == "ada" and stored["url"] == api.url
    assert labcloud("project", "list", token=None).stderr.startswith("error: not logged in")
    assert labcloud("logout", token=None).stdout == "not logged in\n"


def test_signup_is_anonymous(api, labcloud):
    api.reply("POST", "/users", {"id": 9, "username": "bob", "email": "b@example.org", "status": "pending",
                                 "role": "user"}, 201)
    done = labcloud("signup", "bob", "--email", "b@example.org", "--password-stdin", input="long password\n",
                    token=None)
    assert done.exit_code == 0, done.output
    assert "pending" in done.stdout
    assert api.body("POST", "/users") == {"username": "bob", "email": "b@example.org", "password": "long password"}
    assert "Authorization" not in api.calls("POST", "/users")[0]["headers"]


def test_token_list_marks_the_current_one_and_revoke(api, labcloud):
    api.reply("POST", "/tokens", token_answer(), 201)
    labcloud("login", "-u", "ada", "--password-stdin", input="pw\n", token=None)
    api.reply("GET", "/users/7/tokens", [
        {"id": 41, "created_at": "2030-12-31T10:00:00+00:00", "expires_at": EXPIRES, "address": "10.0.0.1"},
        {"id": 40, "created_at": "2030-12-30T10:00:00+00:00", "expires_at": EXPIRES, "address": "10.0.0.2"}])
    listed = labcloud("token", "list", token=None)
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["ID", "CREATED", "EXPIRES", "ADDRESS", "CURRENT"]
    assert lines[1].split()[0] == "41" and lines[1].split()[-1] == "yes" and lines[2].split()[-1] == "no"

    api.reply("DELETE", "/users/7/tokens/40", {"revoked": True})
    revoked = labcloud("token", "revoke", "40", token=None)
    assert revoked.exit_code == 0 and revoked.stdout == "token 40 revoked\n"


def test_an_unreachable_gateway_is_one_line(labcloud):
    done = labcloud("project", "list", env={"LABCLOUD_URL": "http://127.0.0.1:9"})
    assert done.exit_code == 1
    assert done.stderr.startswith("error: cannot reach labcloud at http://127.0.0.1:9: ")
    assert len(done.stderr.splitlines()) == 1


def test_commands_about_me_need_the_user_id_from_login(api, labcloud):
    api.reply("POST", "/tokens", {"id": 1, "token": "s3cret", "expires_at": EXPIRES}, 201)  # no user_id
    labcloud("login", "-u", "ada", "--password-stdin", input="pw\n", token=None)
    api.reply("GET", "/users/me", {"id": 7, "username": "ada"})  # asked instead, where it exists
    api.reply("GET", "/users/7/tokens", [])
    assert labcloud("token", "list", token=None).exit_code == 0
    del api.routes[("GET", "/users/me")]
    done = labcloud("token", "list", token=None)
    assert done.exit_code == 1 and done.stderr.startswith("error: cannot tell your user id")


def test_a_broken_config_place_is_one_line(api, labcloud, config_home):
    config_home.mkdir()
    (config_home / "labcloud").write_text("a file where the folder should be")
    api.reply("POST", "/tokens", token_answer(), 201)
    done = labcloud("login", "-u", "ada", "--password-stdin", input="pw\n", token=None)
    assert done.exit_code == 1 and len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("error: cannot read ") and done.stderr.endswith("Not a directory\n")
