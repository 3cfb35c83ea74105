"""What the command modules share: the group class that turns a client error into one line and
exit status 1, the API connection, name completion, password input, quota options and CSV
imports. Usage errors stay click's (exit status 2)."""
import io
import os
import sys

import click
from click.shell_completion import CompletionItem

from labcloud.client import ApiClient, ClientError, load_config, log_in
from labcloud.commands import output


class LabcloudGroup(click.Group):
    """A group whose commands' ClientError (an API error, no token, no such name) is printed as
    one line on stderr with exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ClientError as exc:
            output.error(exc)
            if getattr(exc, "session_ended", False) and log_in_again():
                # The same command again, with the new token (click's parsed arguments are spent).
                os.execvp(sys.argv[0], sys.argv)
            ctx.exit(1)


def log_in_again():
    """The stored token expired or was revoked: on a terminal, offer to log in again as the same
    user (the password asked hidden). Never when LABCLOUD_TOKEN is set or nobody is at the keyboard."""
    config = load_config()
    if os.environ.get("LABCLOUD_TOKEN") or not config.get("username") or not config.get("url"):
        return False
    if not (output.on_terminal(sys.stdin) and output.on_terminal(sys.stderr)):
        return False
    if not click.confirm(f"log in again to {config['url']} as {config['username']}?", default=True, err=True):
        return False
    password = click.prompt("Password", hide_input=True, err=True)
    try:
        log_in(config["url"], config["username"], password)
    except ClientError as exc:
        output.error(exc)
        return False
    return True


def group(*args, **kwargs):
    kwargs.setdefault("cls", LabcloudGroup)
    return click.group(*args, **kwargs)


def connect(url=None, require_token=True):
    return ApiClient.from_environment(url=url, require_token=require_token)


def completes(path, key="name"):
    """Tab completion of names from a list route (`labcloud login` first; quiet on any error)."""
    def complete(_ctx, _param, incomplete):
        try:
            client = connect()
            client.timeout = 3
            names = sorted({str(item[key]) for item in client.get(path)})
        except Exception:  # completion must never print a traceback into the shell
            return []
        return [CompletionItem(name) for name in names if name.startswith(incomplete)]
    return complete


def project_argument(name="project"):
    return click.argument(name, metavar="PROJECT", shell_complete=completes("/projects"))


def project_option(help_text):
    return click.option("--project", "-p", metavar="PROJECT", help=help_text,
                        shell_complete=completes("/projects"))


def user_argument(name="user"):
    return click.argument(name, metavar="USER", shell_complete=completes("/users", key="username"))


def yes_option(command):
    return click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")(command)


def confirm(yes, question):
    if not yes:
        click.confirm(question, abort=True, err=True)


# -- passwords -------------------------------------------------------------------------------------

def password_stdin_option(command):
    return click.option("--password-stdin", is_flag=True,
                        help="read the password from the first line of stdin instead of a prompt")(command)


def read_password(from_stdin, prompt="Password", confirm_it=False):
    if from_stdin:
        line = click.get_text_stream("stdin").readline().rstrip("\r\n")
        if not line:
            raise click.UsageError("--password-stdin: stdin has no password line")
        return line
    return click.prompt(prompt, hide_input=True, confirmation_prompt=confirm_it, err=True)


# -- quotas ------------------------------------------------------------------------------------------

QUOTA_FIELDS = ("instances", "vcpus", "memory_mib", "volume_gib", "floating_ips", "volumes")  # GET /projects/{id}/quota


class Limit(click.ParamType):
    """A quota limit: a whole number >= 0, or `unlimited` (sent as null)."""
    name = "N|unlimited"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "unlimited":
            return value
        text = str(value).strip().lower()
        if text == "unlimited":
            return "unlimited"
        if text.isdigit():
            return int(text)
        self.fail(f"{value!r} is neither a whole number >= 0 nor 'unlimited'", param, ctx)

    def shell_complete(self, ctx, param, incomplete):
        return [CompletionItem("unlimited")] if "unlimited".startswith(incomplete) else []


def quota_options(command):
    for field in reversed(QUOTA_FIELDS):
        command = click.option(f"--{field.replace('_', '-')}", field, type=Limit(), default=None, metavar="N|unlimited",
                               help=f"limit of {field.replace('_', ' ')} (or 'unlimited')")(command)
    return command


def quota_body(values):
    """Only the limits given; `unlimited` becomes null."""
    return {field: (None if values[field] == "unlimited" else values[field])
            for field in QUOTA_FIELDS if values.get(field) is not None}


def pop_quota(kwargs):
    return quota_body({field: kwargs.pop(field, None) for field in QUOTA_FIELDS})


# -- CSV imports -------------------------------------------------------------------------------------

REPORT_COLUMNS = [("line", "LINE"), ("username", "USERNAME"), ("result", "RESULT"), ("user_id", "USER_ID"),
                  ("message", "MESSAGE")]


def import_csv(client, path, csv_file, as_json, params=None):
    """POST a CSV file (text/csv) with a progress bar, show the per-row report; exit 1 when a
    row has an error (then the server wrote nothing)."""
    body = csv_file.read()  # a class list is small; stdin ("-") has no size to show otherwise
    name = os.path.basename(getattr(csv_file, "name", "") or "") or "stdin"
    with output.UploadProgress(f"sending {name}", len(body)) as progress:
        report = client.post(path, params=params, data=progress.reader(io.BytesIO(body)) if body else b"",
                             headers={"Content-Type": "text/csv; charset=utf-8"})
    rows = report.get("rows") or []
    if as_json:
        output.print_json(report)
    else:
        output.table(rows, REPORT_COLUMNS)
        output.say(f"created {report.get('created', 0)}, existing {report.get('existing', 0)}, "
                   f"errors {report.get('errors', 0)}")
    failed = [row for row in rows if row.get("result") == "error"]
    if failed or report.get("errors"):
        for row in failed:
            output.error(f"line {row.get('line')}: {row.get('username') or '-'}: {row.get('message')}")
        output.note("nothing was imported: fix these lines and import the file again")
        click.get_current_context().exit(1)
    return report
