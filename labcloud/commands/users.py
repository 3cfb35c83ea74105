"""`labcloud user ...`: accounts (most of it admin only; `passwd` is your own password)."""
import click

from labcloud.commands import output, session
from labcloud.commands.base import (confirm, connect, group, import_csv, password_stdin_option, project_option,
                                    read_password, user_argument, yes_option)
from labcloud.commands.session import forget_token_if_stored

USER_COLUMNS = [("id", "ID"), ("username", "USERNAME"), ("email", "EMAIL"), ("full_name", "NAME"),
                ("role", "ROLE"), ("status", "STATUS"), ("created_at", "CREATED")]
STATUSES = ("pending", "active", "suspended", "rejected", "deleted")


@group()
def user():
    """User accounts, passwords, CSV import."""


def _show_change(user_answer, as_json, what=None):
    if as_json:
        output.print_json(user_answer)
    else:
        output.say(what or f"{user_answer['username']} (user {user_answer['id']}) is {user_answer['status']}")


@user.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="only users in this status")
@output.json_option
def user_list(status, as_json):
    """Every user (GET /users, admin)."""
    output.emit(connect().get("/users", params={"status": status}), as_json, columns=USER_COLUMNS)


@user.command("show")
@user_argument()
@output.json_option
def user_show(user, as_json):
    """One user (GET /users/{id}).

    Yourself, or anyone for an admin."""
    client = connect()
    output.emit(client.get(f"/users/{client.user_id(user)}"), as_json)


@user.command("create")
@click.argument("username")
@click.option("--email", required=True)
@click.option("--full-name")
@project_option("put the user in this project (course)")
@click.option("--role", type=click.Choice(["member", "manager"]), help="their role in --project (default member)")
@click.option("--password-prompt", is_flag=True, help="set a password now (asked twice)")
@password_stdin_option
@output.json_option
def user_create(username, email, full_name, project, role, password_prompt, password_stdin, as_json):
    """Create an active account (admin).

    POST /admin/users. Without a password the answer has a one-time link where the user sets
    theirs."""
    client = connect()
    body = {"username": username, "email": email}
    if full_name:
        body["full_name"] = full_name
    if project:
        body["project"] = client.project_id(project)
    if role:
        body["role"] = role
    if password_prompt or password_stdin:
        body["password"] = read_password(password_stdin, confirm_it=not password_stdin)
    created = client.post("/admin/users", body)
    link = created.get("password_link")
    _show_change(created, as_json, f"created {created['username']} (user {created['id']})" +
                 (f"; password link (once): {link}" if link else ""))


@user.command("approve")
@user_argument()
@project_option("also make them a member of this project")
@output.json_option
def user_approve(user, project, as_json):
    """Approve a pending signup (POST /users/{id}/approve)."""
    client = connect()
    body = {"project": client.project_id(project)} if project else {}
    _show_change(client.post(f"/users/{client.user_id(user)}/approve", body), as_json)


@user.command("reject")
@user_argument()
@click.option("--reason", required=True, help="told to the user")
@output.json_option
def user_reject(user, reason, as_json):
    """Reject a pending signup (POST /users/{id}/reject)."""
    client = connect()
    _show_change(client.post(f"/users/{client.user_id(user)}/reject", {"reason": reason}), as_json)


@user.command("suspend")
@user_argument()
@click.option("--reason")
@output.json_option
def user_suspend(user, reason, as_json):
    """Suspend an account and revoke its tokens.

    POST /users/{id}/suspend."""
    client = connect()
    body = {"reason": reason} if reason else {}
    _show_change(client.post(f"/users/{client.user_id(user)}/suspend", body), as_json)


@user.command("enable")
@user_argument()
@output.json_option
def user_enable(user, as_json):
    """Make an account active again.

    POST /users/{id}/enable."""
    client = connect()
    _show_change(client.post(f"/users/{client.user_id(user)}/enable"), as_json)


@user.command("delete")
@user_argument()
@click.option("--transfer-to", metavar="USER", help="hand their instances and keys to this user instead "
                                                    "of deleting them")
@yes_option
@output.json_option
def user_delete(user, transfer_to, yes, as_json):
    """Delete an account (DELETE /users/{id}).

    Its tokens, memberships and keys go; its instances are deleted, or handed to --transfer-to.
    The username stays taken."""
    client = connect()
    user_id, heir = client.user_id(user), client.user_id(transfer_to)
    confirm(yes, f"delete user {user}" + (f" and hand their instances to {transfer_to}?" if heir
                                          else " and all of their instances?"))
    deleted = client.delete(f"/users/{user_id}", params={"transfer_to": heir})
    _show_change(deleted, as_json)


@user.command("passwd")
@click.option("--password-stdin", is_flag=True,
              help="read the current password, then the new one, from the first two lines of stdin")
@output.json_option
def user_passwd(password_stdin, as_json):
    """Change your own password.

    PUT /users/{id}/password. Every token of yours is revoked: log in again afterwards."""
    client = connect()
    me = client.me()
    current = read_password(password_stdin, "Current password")
    new = read_password(password_stdin, "New password", confirm_it=not password_stdin)
    answer = client.put(f"/users/{me}/password", {"current_password": current, "password": new})
    forget_token_if_stored(client)
    output.answer(answer, as_json, lambda: (
        "password changed; every token of yours was revoked: run `labcloud login`"))


@user.command("reset-password")
@user_argument()
@output.json_option
def user_reset_password(user, as_json):
    """Give a user a one-time password link (admin).

    POST /users/{id}/password-reset; every token of theirs is revoked."""
    client = connect()
    answer = client.post(f"/users/{client.user_id(user)}/password-reset")
    output.answer(answer, as_json, lambda: (
        f"password link for {user} (once, until {answer.get('expires_at')}): {answer['password_link']}"))


@user.command("import")
@click.argument("csv_file", metavar="FILE.csv", type=click.File("rb"))
@project_option("the course for rows whose `course` column is empty")
@output.json_option
def user_import(csv_file, project, as_json):
    """Create accounts from a CSV file (admin, manager).

    POST /users/import. Header: username,email,full_name,course (course: a project name; may be
    empty with --project). Nothing is written if any row has an error: the report names the
    lines, exit status 1. Each new user gets a one-time link to set their password."""
    client = connect()
    import_csv(client, "/users/import", csv_file, as_json, params={"project": client.project_id(project)})


# `labcloud user signup` is `labcloud signup` (euca/openstack users look for it under the noun).
user.add_command(session.signup, "signup")

COMMANDS = [user]
