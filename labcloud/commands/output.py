"""Everything the commands print: tables, one object's fields, raw JSON, errors and progress.

On a terminal tables are rich tables; piped or redirected they are plain columns separated by
two spaces (one header line, one line per row, nothing wrapped), for grep and awk. `--json`
prints the API's answer as it came.
"""
import functools
import json
import os
import sys

import click
from rich import box
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table
from rich.text import Text


def on_terminal(stream):
    """Rich layout only on a terminal. TTY_COMPATIBLE=1/0 (rich's own switch) decides when set;
    FORCE_COLOR alone does not turn a pipe into a table with borders."""
    forced = os.environ.get("TTY_COMPATIBLE", "")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def stdout_console():
    return Console(highlight=False, soft_wrap=False)


def stderr_console():
    return Console(stderr=True, highlight=False, soft_wrap=False)


class Format:
    """How a command shows data: `table` (the default), `json` (the API's answer as it came) or
    `value` (bare values of the --column fields, one object per line: for scripts)."""

    def __init__(self, kind, columns):
        self.kind, self.columns = kind, tuple(columns)


def format_options(command):
    """--json, and openstack's `-f value -c FIELD` (or `-f json`), gathered into one `fmt` argument."""
    def gather(function):
        @functools.wraps(function)
        def wrapper(*args, as_json=False, output_format=None, columns=(), **kwargs):
            kind = "json" if as_json else (output_format or "table")
            if columns and kind == "table":
                kind = "value"
            return function(*args, fmt=Format(kind, columns), **kwargs)
        return wrapper
    command = gather(command)
    command = click.option("--column", "-c", "columns", multiple=True, metavar="FIELD",
                           help="with -f value: only this field (repeatable)")(command)
    command = click.option("--format", "-f", "output_format", type=click.Choice(["table", "json", "value"]),
                           help="table (default), json, or value (bare values, one line per object)")(command)
    return click.option("--json", "as_json", is_flag=True, help="the API's JSON answer (= -f json)")(command)


def emit_formatted(data, fmt, columns=None, fields=None):
    """Show an API answer (a list with `columns`, or one object) in the asked format."""
    if fmt.kind == "json":
        return print_json(data)
    if fmt.kind == "value":
        rows = data if isinstance(data, list) else [data]
        for row in rows:
            keys = fmt.columns or ([key for key, _ in columns if not callable(key)] if columns else list(row))
            missing = [key for key in keys if key not in row]
            if missing:
                raise click.UsageError(f"no field {', '.join(missing)} (fields: {', '.join(row)})")
            say(" ".join(value_text(row[key]) for key in keys))
        return None
    return emit(data, False, columns=columns, fields=fields)


def value_text(value):
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return "" if value is None else str(value)


class StateSpinner:
    """--wait's display on stderr: a spinner with the current state (terminals only; piped, each new
    state is one line, so a log shows the way it went)."""

    def __init__(self, what):
        self.what, self.last = what, None
        self.terminal = on_terminal(sys.stderr)
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), console=stderr_console(),
                                 transient=True, disable=not self.terminal)
        self.task = self.progress.add_task(what)

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def show(self, state):
        if state == self.last:
            return
        self.last = state
        self.progress.update(self.task, description=f"{self.what}: {state}")
        if not self.terminal:
            note(f"{self.what}: {state}")


def json_option(command):
    """`--json` for a command that shows data."""
    return click.option("--json", "as_json", is_flag=True,
                        help="print the API's JSON answer instead of a table")(command)


def print_json(data):
    click.echo(json.dumps(data, indent=2))


def say(text=""):
    click.echo(text)


def answer(data, as_json, sentence):
    """What a command that changed something prints: the API's answer with --json, else one
    sentence (`sentence()` is only built when it is shown)."""
    if as_json:
        print_json(data)
    else:
        say(sentence())


def error(text):
    """An error is one line on stderr."""
    click.echo(f"error: {' '.join(str(text).split())}", err=True)


def note(text):
    click.echo(text, err=True)


def cell(value):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items()) or "-"
    text = " ".join(value.split()) if isinstance(value, str) else str(value)
    return text or "-"  # an empty cell would shift the columns for awk


def _value(row, column):
    return column(row) if callable(column) else row.get(column)


def table(rows, columns, title=None):
    """columns: [(key or function of the row, TITLE)]."""
    cells = [[cell(_value(row, key)) for key, _ in columns] for row in rows]
    titles = [title for _, title in columns]
    if on_terminal(sys.stdout):
        console = stdout_console()
        grid = Table(*titles, title=title, box=box.SIMPLE_HEAD, header_style="bold", title_justify="left")
        for line in cells:
            grid.add_row(*(Text(c) for c in line))
        console.print(grid)
        return
    if title:
        say(title)
    widths = [max([len(t)] + [len(line[i]) for line in cells]) for i, t in enumerate(titles)]
    for line in [titles] + cells:
        say("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())


def details(obj, fields=None):
    """One object, a field per line. fields: [(key or function, Label)]; default every key."""
    fields = fields or [(key, key) for key in obj]
    pairs = [(label, cell(_value(obj, key))) for key, label in fields]
    if on_terminal(sys.stdout):
        console = stdout_console()
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        for label, value in pairs:
            grid.add_row(Text(label), Text(value))
        console.print(grid)
        return
    width = max((len(label) for label, _ in pairs), default=0)
    for label, value in pairs:
        say(f"{label.ljust(width)}  {value}")


def emit(data, as_json, columns=None, fields=None, title=None):
    """Show an API answer: raw JSON, a table (a list, with columns) or one object's fields."""
    if as_json:
        print_json(data)
    elif columns is not None:
        table(data, columns, title)
    else:
        details(data, fields)


class UploadProgress:
    """A progress bar on stderr (terminals only) for a body being sent, then a spinner while
    the server works on it. `reader(fileobj, size)` wraps the body so reads move the bar."""

    def __init__(self, description, size, then="sent; the server is checking every row"):
        self.size, self.then = size, then
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 DownloadColumn(), console=stderr_console(), transient=True,
                                 disable=not on_terminal(sys.stderr))
        self.task = self.progress.add_task(description, total=size)

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def reader(self, fileobj):
        return _CountingReader(fileobj, self.size, self._advance)

    def _advance(self, sent):
        self.progress.update(self.task, completed=sent)
        if sent >= self.size:
            self.progress.update(self.task, description=self.then, total=None)


class _CountingReader:
    """A file-like body of known length for requests (so it sends Content-Length)."""

    def __init__(self, fileobj, size, on_read):
        self.fileobj, self.size, self.on_read, self.sent = fileobj, size, on_read, 0

    def __len__(self):
        return self.size

    def read(self, amount=-1):
        chunk = self.fileobj.read(amount)
        self.sent += len(chunk)
        self.on_read(self.sent)
        return chunk

    def __iter__(self):
        while True:
            chunk = self.read(16384)
            if not chunk:
                return
            yield chunk
