"""The local SMTP sink `labcloud run` starts: aiosmtpd storing every mail it receives in a Maildir
(by default `$LABCLOUD_DATA_DIR/mail/`), so a user sees labcloud's mail without a mail server.

    python -m labcloud.mail_sink --maildir DIR [--port 0 --port-file FILE]
                                 [--tls-cert CERT --tls-key KEY] [--login USER] [--defer]

It binds 127.0.0.1 only. Port 0 takes a free port, written to --port-file once it listens (the
launcher waits for that file, then points the metrics service at it). With a certificate it offers
STARTTLS and requires it; with --login it requires AUTH as USER with the password in the
environment variable LABCLOUD_MAIL_SINK_PASSWORD. Those two exist so the service's STARTTLS and
login settings can be tested against a real server, and --defer (every message answered `451`,
as a relay that greylists or is over its quota answers) so can the service's retries. Read the mail with any Maildir reader, e.g.
`mutt -f $LABCLOUD_DATA_DIR/mail`, or Python's `mailbox.Maildir`."""
import argparse
import asyncio
import os
import signal
import socket
import ssl

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

PASSWORD_ENV = "LABCLOUD_MAIL_SINK_PASSWORD"


def tls_context(cert, key):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def login_checker(user, password):
    def authenticate(_server, _session, _envelope, _mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user
              and auth_data.password.decode() == password)
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 on a failure
    return authenticate


class Deferring:
    """An aiosmtpd handler that accepts the envelope and defers every message: a temporary
    failure (RFC 5321 4yz), after which a sender tries again later."""
    async def handle_DATA(self, _server, _session, _envelope):
        return "451 4.7.1 try again later"


def write_port(path, port):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.replace(tmp, path)  # the reader never sees a half-written number


def serve(maildir, host="127.0.0.1", port=0, port_file=None, tls=None, login=None, password=None,
          defer=False):
    for sub in ("tmp", "new", "cur"):  # Maildir() makes them only when the folder is new
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    handler = Deferring() if defer else Mailbox(maildir)

    def session():
        return SMTP(handler, hostname="labcloud-mail-sink", tls_context=tls, require_starttls=tls is not None,
                    authenticator=login_checker(login, password) if login else None,
                    auth_required=login is not None, auth_require_tls=tls is not None)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(session, sock=listener))
    if port_file:
        write_port(port_file, listener.getsockname()[1])
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description="a local SMTP server that keeps every mail in a Maildir")
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (see --port-file)")
    parser.add_argument("--port-file", help="where to write the port once listening")
    parser.add_argument("--tls-cert", help="offer (and require) STARTTLS with this certificate")
    parser.add_argument("--tls-key")
    parser.add_argument("--login", help=f"require AUTH as this user (password in ${PASSWORD_ENV})")
    parser.add_argument("--defer", action="store_true", help="answer every message 451 (keep none)")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.login and not os.environ.get(PASSWORD_ENV):
        parser.error(f"--login needs the password in ${PASSWORD_ENV}")
    serve(args.maildir, args.host, args.port, args.port_file,
          tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None,
          args.login, os.environ.get(PASSWORD_ENV), args.defer)


if __name__ == "__main__":
    main()
