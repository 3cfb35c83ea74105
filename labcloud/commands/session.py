"""`labcloud login`, `logout`, `signup` and `token list|revoke`: the session with a gateway."""
import os

import click

from labcloud.client import ApiError, default_url, load_config, log_in, save_config
from labcloud.commands import output
from labcloud.commands.base import connect, group, password_stdin_option, read_password


@click.command()
@click.option("--url", help="the gateway, e.g. https://cloud.example.edu (default: LABCLOUD_URL, the "
                            "last login's, or http://127.0.0.1:$LABCLOUD_PORT)")
@click.option("--username", "-u", help="default: the last login's; else asked")
@password_stdin_option
def login(url, username, password_stdin):
    """Log in and keep the token.

    POST /tokens; the password is asked (hidden) or read with --password-stdin. The file is ${XDG_CONFIG_HOME:-~/.config}/labcloud/config.json. LABCLOUD_URL and
    LABCLOUD_TOKEN override what it holds."""
    config = load_config()
    base = (url or os.environ.get("LABCLOUD_URL") or config.get("url") or default_url()).rstrip("/")
    if not username and config.get("username") and config.get("url") == base:
        username = config["username"]
    username = username or click.prompt("Username", err=True)
    password = read_password(password_stdin)
    entry, path = log_in(base, username, password)
    output.say(f"logged in to {entry['url']} as {entry['username']} until {entry['expires_at'] or '?'} "
               f"(token kept in {path})")
    if os.environ.get("LABCLOUD_TOKEN"):
        output.note("note: LABCLOUD_TOKEN is set in this shell and is used instead of the stored token")


@click.command()
def logout():
    """Log out: revoke the token and forget it.

    DELETE /tokens/current; the config file keeps the URL and username."""
    client = connect(require_token=False)
    if not client.token:
        output.say("not logged in")
        return
    try:
        client.delete("/tokens/current")
        said = f"logged out of {client.url}"
    except ApiError as exc:
        if exc.status != 401:
            raise
        said = f"logged out of {client.url} (the token had already expired or been revoked)"
    if client.token_from_config:
        _forget_token(client.config)
    else:
        said += " (the token came from LABCLOUD_TOKEN: unset it)"
    output.say(said)


def _forget_token(config):
    """Keep url and username for the next login; drop the secret."""
    for key in ("token", "expires_at", "token_id"):
        config.pop(key, None)
    save_config(config)


def forget_token_if_stored(client):
    """After the server revoked every token of this user (password change)."""
    if client.token_from_config:
        _forget_token(client.config)


@click.command()
@click.argument("username", required=False)
@click.option("--email", help="where your password links are sent (asked if not given)")
@click.option("--full-name")
@click.option("--url", help="the gateway (default: LABCLOUD_URL, the last login's, or local)")
@password_stdin_option
@output.json_option
def signup(username, email, full_name, url, password_stdin, as_json):
    """Ask for an account; an admin approves it.

    POST /users, without a token."""
    username = username or click.prompt("Username", err=True)
    email = email or click.prompt("Email", err=True)
    password = read_password(password_stdin, confirm_it=not password_stdin)
    body = {"username": username, "email": email, "password": password}
    if full_name:
        body["full_name"] = full_name
    client = connect(url, require_token=False)
    user = client.post("/users", body, auth=False)
    if as_json:
        output.print_json(user)
    else:
        output.say(f"signed up as {user['username']} at {client.url}: the account is {user['status']} "
                   "until an administrator approves it; then `labcloud login`")


@group()
def token():
    """Your tokens (sessions): list and revoke them."""


TOKEN_COLUMNS = [("id", "ID"), ("created_at", "CREATED"), ("expires_at", "EXPIRES"), ("address", "ADDRESS"),
                 ("current", "CURRENT")]


def _token_user(client, user):
    return client.user_id(user) if user else client.me()


@token.command("list")
@click.option("--user", metavar="USER", help="another user's tokens (admin)")
@output.json_option
def token_list(user, as_json):
    """Tokens of a user, yours by default.

    GET /users/{id}/tokens: when they were made and expire, from where; never their secrets."""
    client = connect()
    tokens = client.get(f"/users/{_token_user(client, user)}/tokens")
    current = client.config.get("token_id") if client.token_from_config else None
    if as_json:
        return output.print_json(tokens)
    rows = [dict(t, current=t.get("id") == current if current is not None else None) for t in tokens]
    output.table(rows, TOKEN_COLUMNS)


@token.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
@click.option("--user", metavar="USER", help="another user's token (admin)")
@output.json_option
def token_revoke(token_id, user, as_json):
    """Revoke one token by its id.

    DELETE /users/{id}/tokens/{token_id}."""
    client = connect()
    answer = client.delete(f"/users/{_token_user(client, user)}/tokens/{token_id}")
    if client.token_from_config and client.config.get("token_id") == token_id and not user:
        _forget_token(client.config)
    if as_json:
        return output.print_json(answer)
    revoked = (answer or {}).get("revoked", True)
    output.say(f"token {token_id} revoked" if revoked else f"token {token_id} was not active")


COMMANDS = [login, logout, signup, token]
