"""`labcloud notifications ...`: which kinds of mail labcloud sends you."""
import click

from labcloud.commands import output
from labcloud.commands.base import connect, group

KINDS = ("account", "security", "instance", "alarm")
COLUMNS = [("kind", "KIND"), (lambda k: "on" if k["enabled"] else "off", "MAIL"),
           (lambda k: "yes" if k["can_disable"] else "no (always on)", "CAN TURN OFF"),
           ("description", "ABOUT")]
PATH = "/users/me/notifications"


@group()
def notifications():
    """Your mail: list the kinds, enable or disable one (security mail is always on)."""


@notifications.command("list")
@output.json_option
def notifications_list(as_json):
    """Each kind of mail and whether you get it (GET /users/me/notifications)."""
    output.emit(connect().get(PATH), as_json, columns=COLUMNS)


def _set(kind, enabled, as_json):
    kinds = connect().put(PATH, {kind: enabled})
    output.answer(kinds, as_json, lambda: f"{kind} mail is {'on' if enabled else 'off'}")


@notifications.command("enable")
@click.argument("kind", type=click.Choice(KINDS))
@output.json_option
def notifications_enable(kind, as_json):
    """Get KIND mail again (PUT /users/me/notifications)."""
    _set(kind, True, as_json)


@notifications.command("disable")
@click.argument("kind", type=click.Choice(KINDS))
@output.json_option
def notifications_disable(kind, as_json):
    """Stop KIND mail (PUT /users/me/notifications). `security` cannot be turned off: the gateway
    refuses it (exit status 1)."""
    _set(kind, False, as_json)


COMMANDS = [notifications]
