"""OS processes released at one moment: each prints `ready`, waits for `go` on stdin, then does its
work and prints its result; the tests compare what they did together."""
import subprocess


def race(argvs, cwd, timeout=120):
    """Start one process per argv, release them together, return each one's stdout (after `ready`)."""
    workers = [subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for argv in argvs]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    outputs = []
    for worker in workers:
        out, err = worker.communicate(timeout=timeout)
        assert worker.returncode == 0, err
        outputs.append(out)
    return outputs
