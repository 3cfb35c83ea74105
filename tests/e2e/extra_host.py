"""A host agent process added to a running stack (as a new `hostagent` on a new machine would be):
it registers itself with its first heartbeat."""
import contextlib
import os
import signal
import subprocess
import sys


@contextlib.contextmanager
def added_host(stack, admin, name, timeout=60):
    """Runs a host agent for host `name` on the stack's broker until the block ends; yields once
    the stack's scheduler lists the host as up."""
    log = open(os.path.join(stack.data_dir, "logs", f"hostagent-{name}.log"), "ab")
    agent = subprocess.Popen([sys.executable, "-m", "hostagent"], env=stack._host_env(name), cwd=stack.data_dir,
                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        admin.wait_for("/hosts", lambda r: any(h["name"] == name and h["up"] for h in r.json()), timeout=timeout)
        yield name
    finally:
        # Out of placement before its agent goes: until its heartbeats are stale the scheduler
        # would still take it for up, and a later test's instance could land on a host that is gone.
        admin.call("POST", f"/hosts/{name}/disable")
        os.killpg(agent.pid, signal.SIGTERM)
        agent.wait(timeout=30)
        log.close()
