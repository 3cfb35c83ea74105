"""Image upload throughput through the whole path, against a plain file copy of the same bytes on
the same machine, in the same run.

Starts a whole stack on libvirt's test driver (unless --url and --amqp are given), makes a user,
writes a file of --mib MiB of random bytes (a raw disk image), then alternates rounds:
- baseline: the file copied to a new file in the same directory (shutil.copyfile: what a copy of
  the bytes costs on this disk, no network, no checks);
- labcloud: POST /images (raw, private) and PUT /images/{id}/file with the file as the body
  (requests, Content-Length): the gateway reads it in 1 MiB chunks, each goes to the storage
  service over RabbitMQ (base64 in JSON) and is written at its offset; then the service runs
  qemu-img info and sha256 over the whole file before it answers. Those final checks are timed
  alone on the same file too, so the streaming's own rate can be told from the whole PUT's.
Prints MB/s (10^6 bytes per second) per round and the medians, and the ratio labcloud/copy.

    .venv/bin/python bench/image_upload.py [--mib 200] [--rounds 3]
"""
import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.machine import ADMIN_PASSWORD, add_stack_arguments, machine_and_load, on_stack  # noqa: E402
from tests.e2e.api import Api, approved_user  # noqa: E402


def random_file(directory, mib):
    path = os.path.join(directory, "image.raw")
    with open(path, "wb") as out:
        for _ in range(mib):
            out.write(os.urandom(1 << 20))
    return path


def copy_once(path):
    target = path + ".copy"
    started = time.monotonic()
    shutil.copyfile(path, target)
    elapsed = time.monotonic() - started
    os.unlink(target)
    return elapsed


def checks_once(path):
    """What the storage service does at the end of an upload, alone: qemu-img info and sha256."""
    started = time.monotonic()
    subprocess.run(["qemu-img", "info", "--output=json", path], capture_output=True, check=True)
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return time.monotonic() - started


def upload_once(api, path, n):
    started = time.monotonic()
    image = api.call("POST", "/images", 201, json={"name": f"bench-{n}", "format": "raw"}).json()
    with open(path, "rb") as body:
        done = api.call("PUT", f"/images/{image['id']}/file", 200, data=body,
                        headers={"Content-Type": "application/octet-stream"}).json()
    elapsed = time.monotonic() - started
    assert done["state"] == "active" and done["file_bytes"] == os.path.getsize(path), done
    api.call("DELETE", f"/images/{image['id']}", 200)
    return elapsed


def measure(args):
    def run(url, _amqp):
        admin = Api(url).login("admin", ADMIN_PASSWORD)
        user = approved_user(url, admin, f"up{int(time.time()) % 100000}")
        user.http.request = _long_timeout(user.http.request)
        directory = tempfile.mkdtemp(prefix="labcloud-bench-upload-")
        try:
            path = random_file(directory, args.mib)
            size = os.path.getsize(path)
            loads, copies, uploads, checks = [os.getloadavg()], [], [], []
            for n in range(args.rounds):
                copies.append(copy_once(path))
                uploads.append(upload_once(user, path, n))
                checks.append(checks_once(path))
                loads.append(os.getloadavg())
        finally:
            shutil.rmtree(directory)
        report(args, size, copies, uploads, checks, loads)
    on_stack(args, run)


def _long_timeout(request):
    def with_timeout(*a, **kw):
        kw["timeout"] = 600
        return request(*a, **kw)
    return with_timeout


def report(args, size, copies, uploads, checks, loads):
    def rate(seconds):
        return size / seconds / 1e6
    print(machine_and_load(loads))
    print(f"file: {size / 1e6:.1f} MB of random bytes (raw), {args.rounds} rounds, interleaved")
    for n, (copy, upload, check) in enumerate(zip(copies, uploads, checks)):
        print(f"round {n}: copy {rate(copy):7.1f} MB/s ({copy:.2f} s)   labcloud upload {rate(upload):6.1f} MB/s "
              f"({upload:.2f} s, of which ~{check:.2f} s the final qemu-img + sha256)")
    copy, upload, check = statistics.median(copies), statistics.median(uploads), statistics.median(checks)
    print(f"median: copy {rate(copy):.1f} MB/s, labcloud upload {rate(upload):.1f} MB/s (whole PUT), "
          f"streaming alone ~{size / max(upload - check, 1e-9) / 1e6:.1f} MB/s; labcloud/copy = {copy / upload:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    add_stack_arguments(parser)
    measure(parser.parse_args())


if __name__ == "__main__":
    main()
