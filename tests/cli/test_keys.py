"""`labcloud key ...`: a generated private key is written once, mode 600, never over a file."""
import json
import os
import stat

PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
GENERATED = {"id": 5, "name": "laptop", "fingerprint": "SHA256:abc", "public_key": "ssh-ed25519 AAAAC3 laptop",
             "created_at": "2030-01-01T00:00:00+00:00", "private_key": PRIVATE}


def test_generate_writes_the_private_key_mode_600(api, labcloud, tmp_path):
    api.reply("POST", "/keys/generate", GENERATED, 201)
    path = tmp_path / "id_laptop"
    done = labcloud("key", "generate", "laptop", "--output", str(path))
    assert done.exit_code == 0, done.output
    assert api.body("POST", "/keys/generate") == {"name": "laptop", "type": "ed25519"}
    assert path.read_text() == PRIVATE and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert (tmp_path / "id_laptop.pub").read_text() == "ssh-ed25519 AAAAC3 laptop\n"
    assert PRIVATE not in done.output

    again = labcloud("key", "generate", "laptop2", "--output", str(path))
    assert again.exit_code == 1
    assert again.stderr == f"error: {path} exists: not overwriting it (choose another --output)\n"
    assert len(api.calls("POST", "/keys/generate")) == 1  # refused before asking the API
    assert path.read_text() == PRIVATE


def test_generate_json_leaves_the_private_key_out(api, labcloud, tmp_path):
    api.reply("POST", "/keys/generate", GENERATED, 201)
    done = labcloud("key", "generate", "laptop", "--type", "rsa", "-o", str(tmp_path / "k"), "--json")
    shown = json.loads(done.stdout)
    assert "private_key" not in shown and shown["private_key_file"] == str(tmp_path / "k")
    assert api.body("POST", "/keys/generate")["type"] == "rsa"


def test_a_refused_generate_leaves_no_file(api, labcloud, tmp_path):
    api.error("POST", "/keys/generate", 400, "invalid input", {"name": ["already used"]})
    done = labcloud("key", "generate", "laptop", "--output", str(tmp_path / "k"))
    assert done.exit_code == 1 and done.stderr == "error: name: already used\n"
    assert not os.path.exists(tmp_path / "k")


def test_add_list_and_delete_by_name(api, labcloud, tmp_path):
    pub = tmp_path / "id.pub"
    pub.write_text("ssh-ed25519 AAAAC3 me@laptop\n")
    api.reply("GET", "/projects", [{"id": 3, "name": "os-2026"}])
    api.reply("POST", "/keys", {"id": 6, "name": "me", "fingerprint": "SHA256:def"}, 201)
    added = labcloud("key", "add", "me", str(pub), "--project", "os-2026")
    assert added.exit_code == 0, added.output
    assert api.body("POST", "/keys") == {"name": "me", "public_key": "ssh-ed25519 AAAAC3 me@laptop", "project": 3}

    api.reply("GET", "/keys", [{"id": 6, "name": "me", "fingerprint": "SHA256:def", "project": 3}])
    assert labcloud("key", "list").stdout.splitlines()[1].split()[:4] == ["6", "me", "SHA256:def", "3"]
    api.reply("DELETE", "/keys/6", {"deleted": True})
    deleted = labcloud("key", "delete", "me")
    assert deleted.exit_code == 0 and deleted.stdout == "deleted key me (6)\n"
    assert labcloud("key", "delete", "you").stderr == "error: no key named you\n"
