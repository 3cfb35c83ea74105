"""rrdcached, rrdtool's write-back caching daemon, as `labcloud run` and the tests start it: the
metrics service hands it each host's batch of samples in one request and it writes each file
every WRITE_SECONDS (plus a random delay up to JITTER_SECONDS, so the files are not all written
at once) with everything gathered; reads flush a file first (common/rrd/cached.py). Its journal
keeps what it accepted across a crash; at a normal stop it writes everything (-F)."""
import os
import subprocess
import time

WRITE_SECONDS = 300
JITTER_SECONDS = 60
# Files that stopped receiving samples (a deleted instance) are written this often.
FLUSH_SECONDS = 3600
SOCKET_NAME = "rrdcached.sock"


def command(run_dir, metrics_dir):
    """rrdcached's argv (in the foreground) for a daemon whose socket, journal and pid file are
    under `run_dir`; its address is address_of(run_dir)."""
    journal = os.path.join(run_dir, "journal")
    os.makedirs(journal, exist_ok=True)
    return ["rrdcached", "-g", "-F", "-l", address_of(run_dir), "-b", metrics_dir,
            "-j", journal, "-p", os.path.join(run_dir, "rrdcached.pid"),
            "-w", str(WRITE_SECONDS), "-z", str(JITTER_SECONDS), "-f", str(FLUSH_SECONDS)]


def address_of(run_dir):
    return f"unix:{os.path.join(run_dir, SOCKET_NAME)}"


def wait_for_socket(run_dir, process, timeout=10):
    path = os.path.join(run_dir, SOCKET_NAME)
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if process.poll() is not None:
            raise RuntimeError(f"rrdcached exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"rrdcached did not listen on {path} in {timeout}s")
        time.sleep(0.02)


def remove_stale_socket(run_dir):
    """A socket a killed daemon left makes the next one refuse to start."""
    path = os.path.join(run_dir, SOCKET_NAME)
    if os.path.exists(path):
        os.unlink(path)


class RrdCachedDaemon:
    """A private rrdcached for tests and benchmarks; `address` once started."""

    def __init__(self, run_dir, metrics_dir):
        self.run_dir, self.metrics_dir = run_dir, metrics_dir
        self.process = None
        self.address = address_of(run_dir)

    def start(self):
        os.makedirs(self.run_dir, exist_ok=True)
        remove_stale_socket(self.run_dir)
        self.log = open(os.path.join(self.run_dir, "rrdcached.log"), "ab")
        self.process = subprocess.Popen(command(self.run_dir, self.metrics_dir), stdout=self.log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for_socket(self.run_dir, self.process)
        return self

    def cpu_seconds(self):
        """User + system CPU time the daemon has used so far."""
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout=30):
        """SIGTERM: it writes what it holds (-F) and exits."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None
        self.log.close()
