"""`labcloud metrics NAME --since 1h` (an instance's samples as a table) and
`labcloud graph NAME cpu -o cpu.png` (a PNG of an instance's, or with --host a host's, metric)."""
import datetime as dt
import re

import click

from labcloud.client import ClientError
from labcloud.commands import output
from labcloud.commands.base import completes, connect

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
METRIC_TITLES = ("TIME", "CPU_%", "MEMORY_MIB", "DISK_READ_B/S", "DISK_WRITE_B/S", "NET_RX_B/S",
                 "NET_TX_B/S")
METRIC_COLUMNS = [(lambda row, i=i: row[i], title) for i, title in enumerate(METRIC_TITLES)]
SERIES = ("cpu_percent", "memory_mib", "disk_read_bps", "disk_write_bps", "net_rx_bps", "net_tx_bps")


def seconds_of(text):
    """'90s', '30m', '1h', '1d' (or plain seconds) -> seconds; click's usage error otherwise."""
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if not match:
        raise click.BadParameter("a duration such as 30m, 1h or 1d", param_hint="--since")
    return int(match.group(1)) * UNITS[match.group(2) or "s"]


def rows_of(metrics):
    """One row per timestamp: [time, cpu, memory, disk read, disk write, rx, tx]."""
    series = metrics["series"]
    rows = []
    for i, (ts, _value) in enumerate(series["cpu_percent"]):
        values = [series[name][i][1] for name in SERIES]
        if all(v is None for v in values):
            continue  # before the first sample
        rows.append([output_time(ts)] + ["" if v is None else round(v, 1) for v in values])
    return rows


def output_time(ts):
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@click.command("metrics")
@click.argument("name", metavar="NAME", shell_complete=completes("/instances"))
@click.option("--since", default="1h", show_default=True, help="how far back: 30m, 1h, 1d (at most 1d)")
@output.format_options
def metrics(name, since, fmt):
    """An instance's CPU (% of its vCPUs), memory, disk and network rates, one row per step."""
    client = connect()
    instance = client.find_instance(name)
    answer = client.get(f"/instances/{instance['id']}/metrics", params={"seconds": seconds_of(since)})
    if fmt.kind == "json":
        return output.print_json(answer)
    output.table(rows_of(answer), METRIC_COLUMNS,
                 title=f"{instance['name']}: every {answer['step']} s")


@click.command("graph")
@click.argument("name", metavar="NAME")
@click.argument("metric", type=click.Choice(["cpu", "memory", "disk", "network", "load"]))
@click.option("-o", "--output", "path", required=True, type=click.Path(dir_okay=False, writable=True),
              help="the PNG file to write")
@click.option("--period", type=click.Choice(["1h", "1d", "1w", "1m"]), default="1h", show_default=True)
@click.option("--host", "is_host", is_flag=True, help="NAME is a host (administrators)")
def graph(name, metric, path, period, is_host):
    """A graph of an instance's (or a host's) metric over the last hour, day, week or month."""
    client = connect()
    if is_host:
        route = f"/hosts/{name}/graphs/{metric}.png"
    else:
        route = f"/instances/{client.find_instance(name)['id']}/graphs/{metric}.png"
    image = client.get_bytes(route, params={"period": period})
    if image[:8] != b"\x89PNG\r\n\x1a\n":
        raise ClientError(f"GET {route}: the answer is not a PNG")
    with open(path, "wb") as f:
        f.write(image)
    output.note(f"wrote {path} ({len(image)} bytes)")


COMMANDS = [metrics, graph]
