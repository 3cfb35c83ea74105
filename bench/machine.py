"""What the benchmarks ran on, for their reports."""
import os


def describe_machine():
    with open("/proc/meminfo") as fh:
        mem_kib = int(next(line for line in fh if line.startswith("MemTotal")).split()[1])
    return f"{os.cpu_count()} cores, {mem_kib / 1024 / 1024:.0f} GiB"


def machine_and_load(loads):
    """The report's first line: the machine and the load averages (os.getloadavg() tuples) taken
    through the run, first to last."""
    return (f"machine: {describe_machine()}; load average (1 min) at start {loads[0][0]:.2f}, max seen "
            f"{max(x[0] for x in loads):.2f}, at end {loads[-1][0]:.2f} (5 min at end {loads[-1][1]:.2f})")


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
