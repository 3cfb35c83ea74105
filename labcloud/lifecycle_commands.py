"""`labcloud instance actions NAME` (an instance's action log) and `labcloud admin reconcile`
(compare the hosts with the database now, or list recent reports). REST clients of the gateway
(LABCLOUD_URL, LABCLOUD_TOKEN), like `labcloud ssh`."""
import sys

from labcloud.client import ApiClient, ClientError


def _cell(row, key):
    value = row.get(key)
    return "-" if value is None else str(value)


def _table(rows, columns):
    widths = [max([len(title)] + [len(_cell(row, key)) for row in rows]) for key, title in columns]
    lines = ["  ".join(title.ljust(width) for (_, title), width in zip(columns, widths))]
    for row in rows:
        lines.append("  ".join(_cell(row, key).ljust(width) for (key, _), width in zip(columns, widths)))
    return "\n".join(line.rstrip() for line in lines)


def instance_actions(args):
    try:
        client = ApiClient.from_environment()
        instance = client.find_instance(args.name, include_deleted=True)
        actions = client.get(f"/instances/{instance['id']}/actions")
    except ClientError as exc:
        print(f"labcloud instance actions: {exc}", file=sys.stderr)
        return 1
    for action in actions:
        action["by"] = action["username"] or "labcloud"
    print(_table(actions, [("requested_at", "REQUESTED"), ("action", "ACTION"), ("by", "BY"),
                           ("result", "RESULT"), ("finished_at", "FINISHED"), ("message", "MESSAGE")]))
    return 0


def admin_reconcile(args):
    try:
        client = ApiClient.from_environment()
        reports = (client.get(f"/admin/reconcile?limit={args.reports}") if args.reports
                   else [client.post("/admin/reconcile", {}, expect=200)])
    except ClientError as exc:
        print(f"labcloud admin reconcile: {exc}", file=sys.stderr)
        return 1
    for report in reports:
        print(f"reconcile {report['id']} ({report['trigger']}, {report['replica']}) at {report['started_at']}: "
              f"hosts {', '.join(report['hosts']) or '-'}; {len(report['findings'])} findings")
        if report["findings"]:
            print(_table(report["findings"], [("host", "HOST"), ("kind", "KIND"), ("subject", "SUBJECT"),
                                              ("action", "ACTION"), ("detail", "DETAIL")]))
    return 0


def add_commands(sub):
    instance = sub.add_parser("instance", help="instance commands (labcloud instance actions NAME)")
    instance_sub = instance.add_subparsers(dest="instance_command", required=True)
    actions = instance_sub.add_parser("actions", help="an instance's action log: requests, who, results")
    actions.add_argument("name", help="instance name or id (deleted ones too)")
    actions.set_defaults(func=instance_actions)

    admin = sub.add_parser("admin", help="administration (labcloud admin reconcile)")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    reconcile = admin_sub.add_parser("reconcile", help="compare every host with the database now and repair")
    reconcile.add_argument("--reports", type=int, metavar="N", help="instead, show the N newest reports")
    reconcile.set_defaults(func=admin_reconcile)
