"""The local SMTP sink (labcloud/mail_sink.py, real aiosmtpd) as a subprocess for tests, and the
mail it stored. A subprocess rather than a thread: aiosmtpd's asyncio loop and the tests' eventlet
monkey-patching do not mix, and stopping it is what "the SMTP server is down" means."""
import mailbox
import os
import subprocess
import sys
import time

from labcloud.mail_sink import PASSWORD_ENV


class MailSink:
    def __init__(self, directory, tls=None, login=None):
        """tls: (cert, key) to require STARTTLS; login: (user, password) to require AUTH."""
        self.directory = directory
        self.maildir = os.path.join(directory, "mail")
        self.tls, self.login = tls, login
        self.port = 0  # taken at the first start, kept by restarts
        self.process = None

    def start(self, timeout=15, defer=False):
        """defer: the server answers every message 451 (a temporary refusal) and keeps none."""
        port_file = os.path.join(self.directory, "smtp-port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        argv = [sys.executable, "-m", "labcloud.mail_sink", "--maildir", self.maildir,
                "--port", str(self.port), "--port-file", port_file]
        env = dict(os.environ)
        if defer:
            argv.append("--defer")
        if self.tls:
            argv += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        if self.login:
            argv += ["--login", self.login[0]]
            env[PASSWORD_ENV] = self.login[1]
        self.process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not os.path.exists(port_file):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the mail sink did not start (exit status {self.process.poll()})")
            time.sleep(0.05)
        self.port = int(open(port_file).read())
        return self

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def messages(self):
        return list(mailbox.Maildir(self.maildir, create=False)) if os.path.isdir(self.maildir) else []

    def wait_for(self, count, timeout=20):
        """The stored messages once there are at least `count`; fails after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages()
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} mail(s) arrived, expected {count}: {[m['Subject'] for m in found]}")
            time.sleep(0.1)
