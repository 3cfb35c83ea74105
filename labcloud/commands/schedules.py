"""`labcloud schedule create | list | show | history | delete`: an instance's resize, stop or start
once at a time or on a cron schedule, performed by the metrics service as you."""
import click

from labcloud.commands import output
from labcloud.commands.base import completes, connect
from labcloud.commands.instance_rules import add_read_and_delete_commands

COLUMNS = [("id", "ID"), ("name", "NAME"), ("instance", "INSTANCE"),
           (lambda s: s["action"] + (f" {s['flavor']}" if s["flavor"] else ""), "ACTION"),
           (lambda s: s["at"] or f"{s['cron']} ({s['timezone']})", "WHEN"),
           ("next_run_at", "NEXT"), ("state", "STATE")]
HISTORY_COLUMNS = [("due_at", "DUE"), ("action", "ACTION"), ("outcome", "OUTCOME"), ("result", "RESULT"),
                   ("finished_at", "FINISHED")]


@click.group("schedule")
def schedule():
    """Scheduled actions: resize, stop or start an instance at a time or on a cron schedule."""


@schedule.command("create")
@click.argument("instance_name", shell_complete=completes("/instances"))
@click.option("--action", type=click.Choice(["resize", "stop", "start"]), required=True)
@click.option("--flavor", help="resize: the flavor's name or id (labcloud flavor list)",
              shell_complete=completes("/flavors"))
@click.option("--confirm-restart", is_flag=True, help="resize: a running instance may be restarted")
@click.option("--at", "at", help="once, at this time: ISO 8601 with its zone, e.g. 2026-12-24T08:00+01:00")
@click.option("--cron", help='five cron fields, e.g. "0 8 * * 1-5" (weekdays at 08:00)')
@click.option("--timezone", default="UTC", show_default=True, help="the zone --cron is read in, e.g. Europe/Paris")
@click.option("--name", default="", help="a name for the schedule")
@click.option("--client-token", help="your key for this create: run again with it, it returns the first schedule")
@output.json_option
def schedule_create(instance_name, action, flavor, confirm_restart, at, cron, timezone, name, client_token, as_json):
    """Schedule an action on INSTANCE (POST /schedules)."""
    client = connect()
    body = {"instance": client.find_instance(instance_name)["id"], "action": action, "name": name,
            "timezone": timezone}
    if client_token is not None:
        body["client_token"] = client_token
    if flavor is not None:
        body["flavor"] = client.find_flavor(flavor)["id"]
    if confirm_restart:
        body["confirm_restart"] = True
    if at is not None:
        body["at"] = at
    if cron is not None:
        body["cron"] = cron
    made = client.post("/schedules", body)
    output.answer(made, as_json, lambda: f"schedule {made['id']} created, next run {made['next_run_at']}")


add_read_and_delete_commands(schedule, "schedule", COLUMNS, HISTORY_COLUMNS, {
    "list": "Your schedules, those on your instances and your courses'",
    "show": "A schedule and its next run",
    "history": "A schedule's runs, newest first, ok or error"})

COMMANDS = [schedule]
