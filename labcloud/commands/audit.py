"""`labcloud audit`: who did what through the API (admin)."""
import re
from datetime import datetime, timedelta, timezone

import click

from labcloud.commands import output
from labcloud.commands.base import connect, project_option

AUDIT_COLUMNS = [("at", "AT"), (lambda r: r.get("username") or r.get("user_id"), "USER"),
                 ("project_id", "PROJECT"), ("action", "ACTION"), ("method", "METHOD"), ("path", "PATH"),
                 ("status", "STATUS"), ("result", "RESULT"), ("address", "ADDRESS"), ("message", "MESSAGE")]
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class Since(click.ParamType):
    """An RFC 3339 / ISO 8601 time (without an offset: local time), or an age like 90m, 2h, 7d."""
    name = "ISO|AGE"

    def convert(self, value, param, ctx):
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        age = re.fullmatch(r"(\d+)\s*([smhd])", text)
        if age:
            return datetime.now(timezone.utc) - timedelta(**{UNITS[age.group(2)]: int(age.group(1))})
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"{value!r} is neither an ISO time (2026-03-01T09:00) nor an age (2h, 7d)", param, ctx)
        return moment if moment.tzinfo else moment.astimezone()  # local time, with its offset


@click.command()
@click.option("--user", metavar="USER", help="only this user's requests (name or id)")
@project_option("only requests about this project")
@click.option("--since", type=Since(), help="from this time on: ISO (2026-03-01T09:00) or an age (2h, 7d)")
@click.option("--limit", type=click.IntRange(min=1), help="at most this many records, newest first")
@output.json_option
def audit(user, project, since, limit, as_json):
    """The audit log of API requests (GET /audit, admin)."""
    client = connect()
    params = {"user": client.user_id(user), "project": client.project_id(project),
              "since": since.isoformat(timespec="seconds") if since else None, "limit": limit}
    output.emit(client.get("/audit", params=params), as_json, columns=AUDIT_COLUMNS)


COMMANDS = [audit]
