"""`labcloud admin reconcile` (compare the hosts with the database now, or list recent reports):
a REST client of the gateway. (`labcloud instance actions` lives with the other instance commands.)"""
import click

from labcloud.commands import output
from labcloud.commands.base import connect, group

FINDING_COLUMNS = [("host", "HOST"), ("kind", "KIND"), ("subject", "SUBJECT"), ("action", "ACTION"),
                   ("detail", "DETAIL")]


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


COMMANDS = [admin]
