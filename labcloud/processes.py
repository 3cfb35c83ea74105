"""Finding and ending the processes a stack started, from /proc alone.

`labcloud run` must be able to clean up after a launcher that died without stopping anything
(`kill -9`, a crash), so nothing here relies on the launcher's memory: processes are recognised by
what they carry (an environment marker, a command line, a pid file, a namespace).
"""
import os
import signal
import time

TERM_GRACE_S = 3.0
KILL_GRACE_S = 3.0


def process_state(pid):
    """'R', 'S', ..., 'Z' for a zombie, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name is in parentheses and may contain spaces: the state follows it.
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def alive(pid):
    # A killed process can stay a zombie for a while here; kill -0 would call it alive.
    return process_state(pid) not in (None, "Z")


def parent_pid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def command_name(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def read_proc(pid, part):
    """/proc/PID/<part> as bytes (b"" when the process is gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/{part}", "rb") as f:
            return f.read()
    except OSError:
        return b""


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def all_pids():
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def ancestors(pid=None):
    """This process and everything above it: never ours to clean up (the launcher's own `make`
    carries LABCLOUD_DATA_DIR too)."""
    found, pid = set(), pid or os.getpid()
    while pid and pid not in found:
        found.add(pid)
        pid = parent_pid(pid)
    return found


def with_environment(entry):
    """Live processes whose environment holds exactly `entry` (b"NAME=value"), except this
    process and its ancestors."""
    spared = ancestors()
    return [pid for pid in all_pids()
            if pid not in spared and alive(pid) and entry in read_proc(pid, "environ").split(b"\0")]


def terminate(pids, term_grace=TERM_GRACE_S, kill_grace=KILL_GRACE_S, poll=None):
    """SIGTERM, SIGKILL after `term_grace`, then wait up to `kill_grace`; a zombie counts as gone.
    `poll` runs while waiting (a caller reaps its own children there). Returns the survivors."""
    pids = list(pids)
    for sig, grace in ((signal.SIGTERM, term_grace), (signal.SIGKILL, kill_grace)):
        pids = [pid for pid in pids if alive(pid)]
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if _wait_gone(pids, grace, poll):
            return []
    return [pid for pid in pids if alive(pid)]


def _wait_gone(pids, grace, poll):
    deadline = time.monotonic() + grace
    while True:
        if poll is not None:
            poll()
        if not any(alive(pid) for pid in pids):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
