"""`labcloud instance actions NAME` (an instance's action log) and `labcloud admin reconcile`
(compare the hosts with the database now, or list recent reports). REST clients of the gateway,
like `labcloud ssh`."""
import click

from labcloud.commands import output
from labcloud.commands.base import completes, connect, group

ACTION_COLUMNS = [("requested_at", "REQUESTED"), ("action", "ACTION"), ("by", "BY"), ("result", "RESULT"),
                  ("finished_at", "FINISHED"), ("message", "MESSAGE")]
FINDING_COLUMNS = [("host", "HOST"), ("kind", "KIND"), ("subject", "SUBJECT"), ("action", "ACTION"),
                   ("detail", "DETAIL")]


@group()
def instance():
    """Instances (labcloud instance actions NAME)."""


@instance.command("actions")
@click.argument("name", shell_complete=completes("/instances"))
@output.json_option
def instance_actions(name, as_json):
    """An instance's action log.

    Who asked what and how it ended, deleted instances too (GET /instances/{id}/actions)."""
    client = connect()
    found = client.find_instance(name, include_deleted=True)
    actions = client.get(f"/instances/{found['id']}/actions")
    if as_json:
        return output.print_json(actions)
    output.table([dict(a, by=a.get("username") or "labcloud") for a in actions], ACTION_COLUMNS)


@group()
def admin():
    """Administration (labcloud admin reconcile)."""


@admin.command("reconcile")
@click.option("--reports", type=click.IntRange(min=1), metavar="N", help="instead, show the N newest reports")
@output.json_option
def admin_reconcile(reports, as_json):
    """Compare the hosts with the database now.

    POST /admin/reconcile: every host is compared and the difference repaired; --reports N
    shows the N newest reports instead (GET /admin/reconcile)."""
    client = connect()
    found = (client.get("/admin/reconcile", params={"limit": reports}) if reports
             else [client.post("/admin/reconcile", {})])
    if as_json:
        return output.print_json(found if reports else found[0])  # the API's answer as it came
    for report in found:
        output.say(f"reconcile {report['id']} ({report['trigger']}, {report['replica']}) at {report['started_at']}: "
                   f"hosts {', '.join(report['hosts']) or '-'}; {len(report['findings'])} findings")
        if report["findings"]:
            output.table(report["findings"], FINDING_COLUMNS)


COMMANDS = [instance, admin]
