"""Sending one mail through an SMTP server: plain smtplib, STARTTLS and login when configured.

No nameko here (the service injects a Mailer through dependencies.py). smtplib blocks on the
network, so Mailer.send runs it in a native thread (eventlet.tpool) with the unpatched socket and
ssl modules: a slow or silent SMTP server never stalls the service's other workers."""
import dataclasses
import email.message
import email.utils

from eventlet import patcher, tpool

# smtplib and ssl as the standard library has them, on the real socket module: a green socket
# must not be used from tpool's native threads. (patcher.original("ssl") is not enough: its
# SSLSocket would still derive from the green socket.) Their exception classes are these modules'
# own: catch native_smtplib.SMTPException, not smtplib's.
_native_socket = patcher.original("socket")
native_ssl = patcher.inject("ssl", None, ("socket", _native_socket))
native_smtplib = patcher.inject("smtplib", None, ("socket", _native_socket), ("ssl", native_ssl))


def _flag(value):
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


@dataclasses.dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    starttls: bool = False
    user: str | None = None
    password: str | None = None
    mail_from: str = "labcloud <labcloud@localhost>"
    timeout: float = 20.0
    ca_file: str | None = None  # STARTTLS: trust this CA (a private relay's) besides the system's

    @classmethod
    def from_config(cls, config):
        return cls(host=str(config.get("SMTP_HOST") or cls.host),
                   port=int(config.get("SMTP_PORT") or cls.port),
                   starttls=_flag(config.get("SMTP_STARTTLS", False)),
                   user=str(config["SMTP_USER"]) if config.get("SMTP_USER") else None,
                   password=str(config["SMTP_PASSWORD"]) if config.get("SMTP_PASSWORD") else None,
                   mail_from=str(config.get("MAIL_FROM") or cls.mail_from),
                   timeout=float(config.get("SMTP_TIMEOUT") or cls.timeout),
                   ca_file=str(config["SMTP_CA_FILE"]) if config.get("SMTP_CA_FILE") else None)

    @property
    def domain(self):
        """Right of the @ in MAIL_FROM: the domain of every Message-ID labcloud makes."""
        address = email.utils.parseaddr(self.mail_from)[1]
        return address.rpartition("@")[2] or "localhost"


def build_message(settings, message_id, recipient, subject, body):
    message = email.message.EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = recipient
    message["Subject"] = subject
    message["Message-ID"] = f"<{message_id}>"
    message["Date"] = email.utils.formatdate(usegmt=True)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    message.set_content(body)
    return message


def send_blocking(settings, message):
    """One SMTP session for one message; raises (OSError, SMTPException, SSLError) on any failure."""
    with native_smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
        if settings.starttls:
            context = native_ssl.create_default_context(cafile=settings.ca_file)
            smtp.starttls(context=context)
        if settings.user:
            smtp.login(settings.user, settings.password or "")
        smtp.send_message(message)


class Mailer:
    def __init__(self, settings):
        self.settings = settings

    def send(self, message_id, recipient, subject, body):
        message = build_message(self.settings, message_id, recipient, subject, body)
        tpool.execute(send_blocking, self.settings, message)
