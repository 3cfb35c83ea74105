"""`labcloud alarm create | list | show | history | delete`: alarms on an instance's (or, for
administrators, a host's) metrics, with mail and resize/stop actions on a state change."""
import click

from labcloud.commands import output
from labcloud.commands.base import completes, connect
from labcloud.commands.instance_rules import add_read_and_delete_commands

COLUMNS = [("id", "ID"), ("name", "NAME"), (lambda a: a["instance"] or f"host {a['host']}", "ON"),
           ("state", "STATE"), (lambda a: f"{a['statistic']} {a['metric']}", "METRIC"),
           (lambda a: f"{a['comparison']} {a['threshold']:g}", "THRESHOLD"),
           (lambda a: f"{a['datapoints_to_alarm']}/{a['evaluation_periods']} x {a['period']}s", "PERIODS")]
HISTORY_COLUMNS = [("changed_at", "AT"), ("old_state", "FROM"), ("new_state", "TO"), ("value", "VALUE"),
                   ("reason", "REASON"), ("actions_result", "ACTIONS")]
COMPARISONS = {">": "GreaterThanThreshold", ">=": "GreaterThanOrEqualToThreshold",
               "<": "LessThanThreshold", "<=": "LessThanOrEqualToThreshold"}


@click.group("alarm")
def alarm():
    """Alarms: a metric over a threshold for N of M periods mails you and may resize or stop."""


@alarm.command("create")
@click.option("--instance", "instance_name", shell_complete=completes("/instances"), help="an instance's name or id")
@click.option("--host", help="a host (administrators)")
@click.option("--metric", required=True, help="cpu_percent, memory_mib, disk_read_bps, disk_write_bps, net_rx_bps, "
                                              "net_tx_bps; hosts: loadavg, memory_free_kib, memory_total_kib")
@click.option("--statistic", type=click.Choice(["average", "min", "max"]), default="average", show_default=True)
@click.option("--comparison", type=click.Choice(sorted(COMPARISONS)), required=True, help="> >= < <=")
@click.option("--threshold", type=float, required=True)
@click.option("--period", type=int, default=60, show_default=True, help="seconds, a multiple of 5")
@click.option("--evaluation-periods", type=int, default=1, show_default=True, help="M: periods looked at")
@click.option("--datapoints-to-alarm", type=int, help="N: breaching periods of M that alarm (default M)")
@click.option("--missing-data", type=click.Choice(["missing", "ignore", "breaching", "notBreaching"]),
              default="missing", show_default=True)
@click.option("--email", "emails", multiple=True, help="another address to mail (repeatable)")
@click.option("--resize-to", type=int, help="on ALARM, resize the instance to this flavor id")
@click.option("--confirm-restart", is_flag=True, help="the resize may restart a running instance")
@click.option("--stop", "stop_it", is_flag=True, help="on ALARM, stop the instance")
@click.option("--name", default="", help="a name for the alarm")
@click.option("--client-token", help="your key for this create: run again with it, it returns the first alarm")
@output.json_option
def alarm_create(instance_name, host, comparison, emails, resize_to, confirm_restart, stop_it, as_json, **fields):
    """Create an alarm (POST /alarms)."""
    client = connect()
    body = {key: value for key, value in fields.items() if value is not None}
    body.update(comparison=COMPARISONS[comparison], emails=list(emails), actions=[])
    if instance_name:
        body["instance"] = client.find_instance(instance_name)["id"]
    if host:
        body["host"] = host
    if resize_to is not None:
        body["actions"].append({"type": "resize", "flavor": resize_to, "confirm_restart": confirm_restart})
    if stop_it:
        body["actions"].append({"type": "stop"})
    created = client.post("/alarms", body)
    output.answer(created, as_json, lambda: f"alarm {created['id']} created ({created['state']})")


add_read_and_delete_commands(alarm, "alarm", COLUMNS, HISTORY_COLUMNS, {
    "list": "Your alarms, those on your instances and your courses'",
    "show": "An alarm with its state and why",
    "history": "An alarm's state changes, newest first"})

COMMANDS = [alarm]
