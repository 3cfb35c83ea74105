"""The commands alarms and schedules share (rules the metrics service keeps on instances):
`list [--instance NAME]`, `show ID`, `history ID`, `delete ID`, added to a command group."""
import click

from labcloud.commands import output
from labcloud.commands.base import connect


def add_read_and_delete_commands(group, noun, columns, history_columns, texts):
    """`noun`: `alarm` or `schedule` (the route is /<noun>s); `texts`: the help of `list`, `show`
    and `history`."""
    path = f"/{noun}s"

    @group.command("list", help=f"{texts['list']} (GET {path}).")
    @click.option("--instance", "instance_name", help=f"only this instance's {noun}s")
    @output.json_option
    def listing(instance_name, as_json):
        client = connect()
        params = {"instance": client.find_instance(instance_name)["id"]} if instance_name else None
        output.emit(client.get(path, params=params), as_json, columns=columns)

    @group.command("show", help=f"{texts['show']} (GET {path}/ID).")
    @click.argument("row_id", metavar="ID", type=int)
    @output.json_option
    def show(row_id, as_json):
        output.emit(connect().get(f"{path}/{row_id}"), as_json)

    @group.command("history", help=f"{texts['history']} (GET {path}/ID/history).")
    @click.argument("row_id", metavar="ID", type=int)
    @output.json_option
    def history(row_id, as_json):
        output.emit(connect().get(f"{path}/{row_id}/history"), as_json, columns=history_columns)

    @group.command("delete", help=f"Delete one {noun} and its history (DELETE {path}/ID).")
    @click.argument("row_id", metavar="ID", type=int)
    @output.json_option
    def delete(row_id, as_json):
        answer = connect().delete(f"{path}/{row_id}")
        output.answer(answer, as_json, lambda: f"{noun} {row_id} deleted" if answer["deleted"]
                      else f"{noun} {row_id} was already gone")
