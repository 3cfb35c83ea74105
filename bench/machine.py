"""What the benchmarks ran on, for their reports."""
import os


def describe_machine():
    with open("/proc/meminfo") as fh:
        mem_kib = int(next(line for line in fh if line.startswith("MemTotal")).split()[1])
    return f"{os.cpu_count()} cores, {mem_kib / 1024 / 1024:.0f} GiB"


ADMIN_PASSWORD = "bench-admin-password"


def add_stack_arguments(parser):
    """--url/--amqp: measure a running system instead of starting one."""
    parser.add_argument("--url", help="a running gateway (with --amqp and admin password "
                                      f"{ADMIN_PASSWORD!r}); default: start a stack")
    parser.add_argument("--amqp", help="the running stack's AMQP URI")


def on_stack(args, measure):
    """measure(gateway URL, AMQP URI) on the running system --url/--amqp name, or on a fresh
    stack (libvirt's test driver) started for the run and stopped after it."""
    if args.url:
        return measure(args.url, args.amqp)
    import tempfile
    from labcloud.rabbit import free_port
    from labcloud.stack import Stack
    with Stack(tempfile.mkdtemp(prefix="labcloud-bench-"), port=free_port(), admin_password=ADMIN_PASSWORD,
               extra_env={"HEARTBEAT_INTERVAL": "1"}, quiet=True) as stack:
        return measure(stack.url, stack.amqp_uri)
