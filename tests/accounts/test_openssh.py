"""Parsing and fingerprinting OpenSSH public key lines."""
import base64
import hashlib
import struct
import subprocess

import pytest

from services.accounts.openssh import fingerprint, parse_public_key


def ssh_string(data):
    return struct.pack(">I", len(data)) + data


def line_of(blob, key_type="ssh-ed25519"):
    return f"{key_type} {base64.b64encode(blob).decode()}"


def test_fingerprint_is_unpadded_base64_of_sha256_of_the_blob(key_lines):
    line = key_lines.ed25519()
    blob = base64.b64decode(line.split()[1])
    by_hand = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    parsed = parse_public_key(line)
    assert parsed.fingerprint == fingerprint(blob) == by_hand
    assert "=" not in parsed.fingerprint and len(parsed.fingerprint) == len("SHA256:") + 43


@pytest.mark.parametrize("kind", ["ed25519", "rsa", "ecdsa"])
def test_fingerprint_matches_ssh_keygen(key_lines, tmp_path, kind):
    line = getattr(key_lines, kind)()
    path = tmp_path / "key.pub"
    path.write_text(line + "\n")
    out = subprocess.run(["ssh-keygen", "-lf", str(path)], capture_output=True, text=True,
                         check=True).stdout
    assert out.split()[1] == parse_public_key(line).fingerprint


def test_accepts_supported_types_and_normalises_the_line(key_lines):
    ed = key_lines.ed25519(comment="alice@laptop")
    parsed = parse_public_key("  " + ed.replace(" ", "\t", 1) + "  ")
    assert parsed.key_type == "ssh-ed25519" and parsed.bits == 256
    assert parsed.comment == "alice@laptop" and parsed.line == ed
    assert parse_public_key(key_lines.rsa(2048)).bits == 2048
    for bits in (256, 384, 521):
        parsed = parse_public_key(key_lines.ecdsa(bits))
        assert parsed.key_type == f"ecdsa-sha2-nistp{bits}" and parsed.bits == bits
    no_comment = " ".join(ed.split()[:2])
    assert parse_public_key(no_comment).line == no_comment


@pytest.mark.parametrize("line, message", [
    ("", "empty"),
    ("garbage", "expected 'type base64-key"),
    ("ssh-dss AAAAB3NzaC1kc3M=", "unsupported key type"),
    ("ssh-ed25519 not*base64!", "not valid base64"),
    (line_of(ssh_string(b"ssh-rsa") + ssh_string(b"x" * 32)), "does not hold a ssh-ed25519"),
    (line_of(ssh_string(b"ssh-ed25519") + ssh_string(b"short")), "not a valid ssh-ed25519"),
    (line_of(ssh_string(b"ssh-ed25519") + ssh_string(b"x" * 32) + b"trailing"), "not a valid"),
])
def test_rejects_garbage_with_a_reason(line, message):
    with pytest.raises(ValueError, match=message):
        parse_public_key(line)


def test_rejects_short_rsa_and_multiple_lines(key_lines):
    with pytest.raises(ValueError, match="at least 2048 bits, this one has 1024"):
        parse_public_key(key_lines.rsa(1024))
    with pytest.raises(ValueError, match="one public key line"):
        parse_public_key(key_lines.ed25519() + "\n" + key_lines.ed25519())
