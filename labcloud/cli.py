"""`labcloud`: operator commands.

  labcloud run            the whole system on this machine (Ctrl-C stops everything it started)
  labcloud serve SERVICE  migrate, then run one service in the foreground (containers)
  labcloud image build N  build a bootable image from Debian packages (see --help)
  labcloud image register N  make a built image (or --disk FILE) bootable for users (admin)
  labcloud ssh NAME       log in to your instance NAME with your SSH key
  labcloud instance actions NAME   an instance's action log (who asked what, how it ended)
  labcloud admin reconcile         compare the hosts with the database now (--reports N: recent runs)
"""
import argparse
import os
import signal
import sys
import time

from labcloud import lifecycle_commands


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
                  image_cache_dir=os.environ.get("LABCLOUD_IMAGE_CACHE"))
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
    lines.append("Ctrl-C stops everything (guests are powered off, their disks stay).")
    return "\n".join(lines)


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
        print(f"labcloud ssh: {exc}", file=sys.stderr)
        return 2
    argv = ["ssh", "-p", str(endpoint["port"]), "-i", args.identity, "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            f"{args.user}@{endpoint['host']}"] + args.command
    os.execvp("ssh", argv)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="labcloud", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the whole system locally").set_defaults(func=cmd_run)
    serve = sub.add_parser("serve", help="migrate and run one service (containers)")
    serve.add_argument("service", choices=["accounts", "network", "storage", "instances", "metrics"])
    serve.set_defaults(func=cmd_serve)
    image = sub.add_parser("image", help="build and register images (labcloud image build|register --help)", add_help=False)
    image.add_argument("rest", nargs=argparse.REMAINDER)
    image.set_defaults(func=cmd_image)
    ssh = sub.add_parser("ssh", help="log in to an instance with your key")
    ssh.add_argument("name", help="instance name (or id)")
    ssh.add_argument("-i", "--identity", default=os.path.expanduser("~/.ssh/id_ed25519"),
                     help="private key file (default ~/.ssh/id_ed25519)")
    ssh.add_argument("-l", "--user", default="root")
    ssh.add_argument("command", nargs=argparse.REMAINDER, help="run this instead of a shell")
    ssh.set_defaults(func=cmd_ssh)
    lifecycle_commands.add_commands(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
