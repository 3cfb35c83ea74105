"""OpenSSH public key lines ("type base64 [comment]"): parsing, policy and fingerprints; and
generating key pairs.

Pure functions, no database, so the request schema can use them to name `public_key` in its
errors alongside the other fields.
"""
import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

ALLOWED_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                 "ecdsa-sha2-nistp521")
MIN_RSA_BITS = 2048
MAX_LINE_LENGTH = 16384


@dataclass(frozen=True)
class PublicKey:
    key_type: str
    blob: bytes
    comment: str
    bits: int

    @property
    def line(self):
        """The key as it will be written into authorized_keys: normalised whitespace."""
        encoded = base64.b64encode(self.blob).decode("ascii")
        return f"{self.key_type} {encoded} {self.comment}".rstrip()

    @property
    def fingerprint(self):
        return fingerprint(self.blob)


def fingerprint(blob):
    """OpenSSH's form, as `ssh-keygen -lf` prints it: unpadded base64 of sha256(blob)."""
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _embedded_type(blob):
    """The key blob starts with its own type name; it must agree with the line's first field."""
    if len(blob) < 4:
        return None
    (length,) = struct.unpack(">I", blob[:4])
    return blob[4:4 + length].decode("ascii", "replace") if length <= len(blob) - 4 else None


def parse_public_key(line):
    """Return a PublicKey, or raise ValueError with a message fit for the user."""
    if not isinstance(line, str):
        raise ValueError("not a string")
    line = line.strip()
    if not line:
        raise ValueError("empty public key")
    if len(line) > MAX_LINE_LENGTH:
        raise ValueError("public key line is too long")
    if "\n" in line or "\r" in line:
        # Several lines would become several authorized_keys entries: one key per request.
        raise ValueError("exactly one public key line is expected")
    parts = line.split(None, 2)
    if len(parts) < 2:
        raise ValueError("expected 'type base64-key [comment]', as in an id_*.pub file")
    key_type, encoded = parts[0], parts[1]
    comment = parts[2].strip() if len(parts) == 3 else ""
    if key_type not in ALLOWED_TYPES:
        raise ValueError(f"unsupported key type {key_type!r}; use one of {', '.join(ALLOWED_TYPES)}")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the key data is not valid base64") from None
    if _embedded_type(blob) != key_type:
        raise ValueError(f"the key data does not hold a {key_type} key")
    try:
        key = paramiko.PKey.from_type_string(key_type, blob)
    except Exception:  # paramiko raises many kinds (SSHException, ValueError, struct.error...)
        raise ValueError(f"the key data is not a valid {key_type} key") from None
    if key.asbytes() != blob:
        # paramiko ignores trailing bytes; a key must be exactly what it claims to be.
        raise ValueError(f"the key data is not a valid {key_type} key")
    bits = key.get_bits()
    if key_type == "ssh-rsa" and bits < MIN_RSA_BITS:
        raise ValueError(f"RSA keys need at least {MIN_RSA_BITS} bits, this one has {bits}")
    return PublicKey(key_type=key_type, blob=blob, comment=comment, bits=bits)


GENERATED_RSA_BITS = 3072


def generate_key_pair(key_type, comment=""):
    """A new key pair: (private key in OpenSSH's PEM format, unencrypted; public key line).
    `key_type` "ed25519" or "rsa" (3072 bits). CPU-heavy for RSA (a few hundred ms): the service
    runs it off the eventlet hub (dependencies.KeyPairs)."""
    if key_type == "ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
    elif key_type == "rsa":
        private = rsa.generate_private_key(public_exponent=65537, key_size=GENERATED_RSA_BITS)
    else:
        raise ValueError(f"unsupported key type {key_type!r}")
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode("ascii")
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode("ascii")
    return pem, f"{public} {comment}".rstrip()
