"""`labcloud`: the operator's launcher and every user's command line (a client of the REST API).

\b
  labcloud run            the whole system on this machine (Ctrl-C stops everything it started)
  labcloud serve SERVICE  migrate, then run one service in the foreground (containers)
  labcloud image build N  build a bootable image from Debian packages (see --help)
  labcloud image register N  make a built image (or --disk FILE) bootable for users (admin)
  labcloud ssh NAME       log in to your instance NAME with your SSH key
  labcloud instance actions NAME   an instance's action log (who asked what, how it ended)
  labcloud admin reconcile         compare the hosts with the database now (--reports N: recent runs)
  labcloud host list               the hosts: capacity, use, last heartbeat (admin)
  labcloud ip allocate --course C  a floating IP (then: ip associate IP NAME)
  labcloud secgroup list COURSE    a course's security groups (rule-add, instance NAME --set G)
  labcloud login / logout / signup / token   your session with a gateway
  labcloud project / quota / user / key / audit   courses, limits, accounts, SSH keys, audit log
  labcloud notifications list | enable KIND | disable KIND   which mail you get
  labcloud alarm create --instance NAME --metric cpu_percent --comparison '>' --threshold 80
                                   an alarm (list, show ID, history ID, delete ID)
  labcloud schedule create NAME --action stop --cron "0 20 * * 1-5" --timezone Europe/Paris
                                   a scheduled resize/stop/start (list, show, history, delete)

Every command but run, serve and image build talks to the gateway's REST API only. `labcloud
login` keeps a token in ${XDG_CONFIG_HOME:-~/.config}/labcloud/config.json (mode 600);
LABCLOUD_URL and LABCLOUD_TOKEN override it. Names or ids are accepted wherever an id is
expected (an all-digit user is an id). Commands that show data take --json (the API's answer as
it came). An API error is one line on stderr and exit status 1; a usage error exits with 2.

\b
Bash completion (commands, options, and project/key/instance names once logged in):
  eval "$(_LABCLOUD_COMPLETE=bash_source labcloud)"
"""
import importlib.metadata
import os
import signal
import sys
import time
from types import SimpleNamespace

import click

from labcloud import lifecycle_commands
from labcloud.commands import audit, hosts, instances, keys, networks, projects, resources, session, users
from labcloud.commands import floating_ips, volumes
from labcloud.commands import notifications
from labcloud.commands import alarms as alarm_commands
from labcloud.commands import schedules as schedule_commands
from labcloud.commands import metrics as metrics_commands
from labcloud.commands import images
from labcloud.commands.base import LabcloudGroup, completes
from labcloud.image_register import register as image_register_command
from labcloud.metrics_ports import CREDENTIALS_FILE


# A terminal's Ctrl-C (INT), a plain `kill` (TERM) and a closed terminal (HUP) all stop the stack.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def cmd_run(args):
    from labcloud.stack import Stack
    data_dir = os.environ.get("LABCLOUD_DATA_DIR", "var")
    port = int(os.environ.get("LABCLOUD_PORT", "8080"))
    stack = Stack(data_dir, port=port, amqp_uri=os.environ.get("AMQP_URI"),
                  hosts=int(os.environ.get("LABCLOUD_HOSTS", "1")),
                  hypervisor=os.environ.get("LABCLOUD_HYPERVISOR", "qemu"),
                  admin_password=os.environ.get("LABCLOUD_ADMIN_PASSWORD"),
                  image_cache_dir=os.environ.get("LABCLOUD_IMAGE_CACHE"),
                  metrics_http=_switched_on("LABCLOUD_METRICS_HTTP"),
                  prometheus=_switched_on("LABCLOUD_PROMETHEUS"))
    state = {"started": False, "stop": False}

    def on_signal(signum, _frame):
        # The first signal starts the stop; further ones (a second Ctrl-C) are ignored so the stop
        # always runs to its end. Helpers run during the stop inherit the ignoring, so a Ctrl-C
        # cannot kill them half-way either.
        _ignore_stop_signals()
        state["stop"] = True
        if not state["started"]:
            raise KeyboardInterrupt  # abandon the start: Stack.start stops what it began
    for sig in STOP_SIGNALS:
        signal.signal(sig, on_signal)
    try:
        stack.start()
        state["started"] = True
        _say(_running_banner(stack))
        while not state["stop"]:
            stack.check_alive()
            time.sleep(0.5)
    except RuntimeError as exc:
        _say(f"labcloud: {exc}", sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        _ignore_stop_signals()
        _say("stopping labcloud: guests are powered off (their disks and definitions stay; start "
             "them again after the next run) ...")
        stack.stop()
        parts = ", ".join(f"{key} {value:.1f}" if isinstance(value, float) else f"{key} {value}"
                          for key, value in stack.stop_timings.items())
        _say(f"labcloud stopped in {stack.stop_seconds:.1f} s ({parts})")
    return 0


def _switched_on(variable):
    """Optional parts of `labcloud run` are on unless the variable says off (off, 0, false, no)."""
    return os.environ.get(variable, "on").strip().lower() not in ("off", "0", "false", "no")


def _ignore_stop_signals():
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _say(text, stream=sys.stdout):
    # After a hang-up the terminal is gone: a failed print must not skip the stop.
    try:
        print(text, file=stream, flush=True)
    except OSError:
        pass


def _running_banner(stack):
    lines = [f"\nlabcloud is running: {stack.url}/api/v1  (OpenAPI: {stack.url}/api/v1/openapi.json)",
             f"data directory: {stack.data_dir}  (logs in {stack.data_dir}/logs)"]
    if stack.admin_created_password and not stack.admin_password:
        lines.append(f"bootstrap admin: username 'admin', password '{stack.admin_created_password}'"
                     " (shown once; set LABCLOUD_ADMIN_PASSWORD to reset it)")
    elif stack.admin_password:
        lines.append("bootstrap admin: username 'admin', password from LABCLOUD_ADMIN_PASSWORD")
    else:
        lines.append("bootstrap admin: username 'admin' (password shown at first run;"
                     " set LABCLOUD_ADMIN_PASSWORD to reset it)")
    lines.append(f"log in: curl -s -X POST {stack.url}/api/v1/tokens -H 'Content-Type: application/json'"
                 " -d '{\"username\": \"admin\", \"password\": \"...\"}'")
    lines.append(f"    or: labcloud login --url {stack.url} --username admin")
    if stack.smtp_port:
        lines.append(f"mail labcloud sends: the Maildir {stack.data_dir}/mail (local SMTP sink on "
                     f"127.0.0.1:{stack.smtp_port}; set SMTP_HOST for a real relay)")
    lines += _metrics_lines(stack)
    lines.append("Ctrl-C stops everything (guests are powered off, their disks stay).")
    return "\n".join(lines)


def _metrics_lines(stack):
    lines = []
    if stack.agent_metrics:
        some = next(iter(stack.agent_metrics.values()))
        lines.append(f"hosts' XenServer rrd_updates (HTTP Basic, user '{some.user}', password in "
                     f"{os.path.join(stack.data_dir, CREDENTIALS_FILE)}; LABCLOUD_METRICS_HTTP=off: none):")
        lines += [f"    {host}: {agent.url}/rrd_updates?start=...  and /vm_rrd?uuid=..."
                  for host, agent in stack.agent_metrics.items()]
    if stack.prometheus_ports:
        lines.append(f"Prometheus metrics (LABCLOUD_PROMETHEUS=off: none but the gateway's): gateway {stack.url}/metrics")
        lines += [f"    {name}: http://127.0.0.1:{port}/metrics" for name, port in stack.prometheus_ports.items()]
    return lines


def cmd_serve(args):
    """For containers: apply this service's migrations, then become `nameko run`."""
    from common.migrate import upgrade
    from labcloud.stack import DATABASE_SERVICES, REPO_ROOT
    if args.service in DATABASE_SERVICES:
        upgrade(f"services.{args.service}", os.environ["DATABASE_URL"])
    if args.service == "accounts":
        from common.db import make_engine
        from services.accounts.bootstrap import ensure_admin
        created, password = ensure_admin(make_engine(os.environ["DATABASE_URL"]),
                                         os.environ.get("LABCLOUD_ADMIN_PASSWORD"))
        if created and not os.environ.get("LABCLOUD_ADMIN_PASSWORD"):
            print(f"bootstrap admin password: {password}", flush=True)
    config = os.path.join(REPO_ROOT, "services", args.service, "config.yaml")
    os.execvp(sys.executable, [sys.executable, "-m", "nameko", "run", "--config", config,
                               f"services.{args.service}.service"])


def cmd_image(args):
    if args.rest[:1] == ["register"]:  # a REST client action, not a build
        from labcloud.image_register import main as register_main
        return register_main(args.rest[1:])
    from imagebuilder.cli import main as image_main
    return image_main(args.rest)


def cmd_ssh(args):
    """Finds the instance through the REST API (token in LABCLOUD_TOKEN, gateway in LABCLOUD_URL),
    then hands over to the system's ssh client on the instance's endpoint."""
    from labcloud.client import ApiClient, ClientError
    try:
        client = ApiClient.from_environment()
        endpoint = client.ssh_endpoint(args.name)
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    instances.exec_ssh(endpoint, args.identity, args.user, args.command)


SERVICES = ["accounts", "network", "storage", "instances", "metrics"]


def _version():
    try:
        return importlib.metadata.version("labcloud")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@click.group(cls=LabcloudGroup, help=__doc__,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(_version(), "--version", "-V", prog_name="labcloud", message="%(prog)s %(version)s")
def cli():
    pass


def _exit(status):
    click.get_current_context().exit(status or 0)


@cli.command("run")
def run():
    """Run the whole system locally.

    LABCLOUD_DATA_DIR, LABCLOUD_PORT, LABCLOUD_HOSTS, LABCLOUD_HYPERVISOR and
    LABCLOUD_ADMIN_PASSWORD configure it. Ctrl-C stops everything it started."""
    _exit(cmd_run(SimpleNamespace()))


@cli.command("serve")
@click.argument("service", type=click.Choice(SERVICES))
def serve(service):
    """Migrate and run one service in the foreground (containers)."""
    _exit(cmd_serve(SimpleNamespace(service=service)))


@cli.group("image", cls=LabcloudGroup)
def image():
    """Build and register images."""


@image.command("build", add_help_option=False,
               context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("rest", nargs=-1, type=click.UNPROCESSED)
def image_build(rest):
    """Build a bootable image from Debian packages.

    See `labcloud image build --help`."""
    _exit(cmd_image(SimpleNamespace(rest=["build", *rest])))


image.add_command(image_register_command)
image.add_command(instances.image_list)
for _image_command in (images.image_upload, images.image_show, images.image_delete):
    image.add_command(_image_command)
instances.instance.add_command(images.instance_save_image)


class RemainderCommand(click.Command):
    """argparse's REMAINDER for `ssh NAME [options] [command...]`: options may come before or
    after NAME; from the first word after NAME on, everything (options too) is the command."""

    def parse_args(self, ctx, args):
        takes_value = {opt for param in self.params if isinstance(param, click.Option) and not param.is_flag
                       for opt in param.opts + param.secondary_opts}
        arranged, positionals, rest = [], 0, list(args)
        while rest:
            word = rest.pop(0)
            if word == "--":
                arranged += [word] + rest
                break
            if word.startswith("-") and word != "-":
                arranged.append(word)
                if word in takes_value and rest:
                    arranged.append(rest.pop(0))
                continue
            positionals += 1
            if positionals == 2:
                arranged += ["--", word] + rest
                break
            arranged.append(word)
        return super().parse_args(ctx, arranged)


@cli.command("ssh", cls=RemainderCommand)
@click.argument("name", shell_complete=completes("/instances"))
@click.option("-i", "--identity", default=os.path.expanduser("~/.ssh/id_ed25519"), show_default=True,
              help="private key file")
@click.option("-l", "--user", default="root", show_default=True)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def ssh(name, identity, user, command):
    """Log in to an instance with your SSH key.

    NAME is the instance's name or id; COMMAND runs instead of a shell. Exit status 2 when the
    instance cannot be found or has no SSH endpoint."""
    _exit(cmd_ssh(SimpleNamespace(name=name, identity=identity, user=user, command=list(command))))


for _module in (session, users, projects, keys, audit, hosts, networks, instances, resources, lifecycle_commands,
                volumes, floating_ips, notifications, metrics_commands, alarm_commands, schedule_commands):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main(argv=None):
    """The `labcloud` console script; returns the exit status."""
    try:
        cli.main(args=argv, prog_name="labcloud")
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
