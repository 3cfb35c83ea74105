"""The SMTP client (services/metrics/mailer.py) against labcloud's real aiosmtpd sink: plain,
STARTTLS with a private CA, login; and what its failures look like."""
import datetime as dt
import ipaddress
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.metrics.mailer import Mailer, SmtpSettings, native_smtplib as smtplib
from tests.mail_sink import MailSink


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: the relay's, and the CA the client trusts."""
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labcloud test relay")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "relay.pem", directory / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture
def relay(tmp_path, certificate):
    """A relay that requires STARTTLS and a login, as a real one would."""
    sink = MailSink(str(tmp_path / "relay"), tls=certificate, login=("mailer", "relay secret")).start()
    yield sink
    sink.stop()


def send(settings):
    Mailer(settings).send("test.1.user1@lab.example", "frank@students.example", "hello", "a body\n")


def test_starttls_and_login_deliver(relay, certificate):
    send(SmtpSettings(port=relay.port, starttls=True, user="mailer", password="relay secret",
                      ca_file=certificate[0], mail_from="labcloud <cloud@lab.example>"))
    [mail] = relay.wait_for(1)
    assert mail["Message-ID"] == "<test.1.user1@lab.example>" and mail["To"] == "frank@students.example"


def test_a_wrong_password_is_refused(relay, certificate):
    with pytest.raises(smtplib.SMTPAuthenticationError):
        send(SmtpSettings(port=relay.port, starttls=True, user="mailer", password="wrong", ca_file=certificate[0]))
    assert relay.messages() == []


def test_a_relay_not_trusted_is_refused(relay):
    # Without the private CA the certificate does not verify: nothing is sent in the clear instead.
    with pytest.raises(ssl.SSLError):
        send(SmtpSettings(port=relay.port, starttls=True, user="mailer", password="relay secret"))
    assert relay.messages() == []


def test_without_starttls_the_relay_refuses(relay):
    with pytest.raises(smtplib.SMTPException):
        send(SmtpSettings(port=relay.port, user="mailer", password="relay secret"))
    assert relay.messages() == []


def test_settings_from_the_service_config():
    settings = SmtpSettings.from_config({"SMTP_HOST": "relay.lab.example", "SMTP_PORT": 587, "SMTP_STARTTLS": "true",
                                         "SMTP_USER": "u", "SMTP_PASSWORD": 1234, "SMTP_CA_FILE": None,
                                         "MAIL_FROM": "Lab Cloud <noreply@cloud.lab.example>"})
    assert (settings.host, settings.port, settings.starttls, settings.user, settings.password) == (
        "relay.lab.example", 587, True, "u", "1234")
    assert settings.ca_file is None and settings.domain == "cloud.lab.example"
    defaults = SmtpSettings.from_config({"SMTP_USER": None, "SMTP_STARTTLS": False})
    assert (defaults.host, defaults.port, defaults.starttls, defaults.user) == ("127.0.0.1", 25, False, None)
