"""What the benchmarks ran on, for their reports."""
import os


def describe_machine():
    with open("/proc/meminfo") as fh:
        mem_kib = int(next(line for line in fh if line.startswith("MemTotal")).split()[1])
    return f"{os.cpu_count()} cores, {mem_kib / 1024 / 1024:.0f} GiB"
