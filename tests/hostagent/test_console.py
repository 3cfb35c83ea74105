"""Serial console logs: where they live and how their tail is read."""
import os

from hostagent import console

ID = "7a1b2c3d-0000-4000-8000-000000000001"


def test_path_is_absolute_under_console_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert console.console_log_path({"CONSOLE_DIR": "var/console/h1"}, ID) == \
        os.path.join(str(tmp_path), "var/console/h1", f"{ID}.log")


def test_tail_returns_the_last_bytes(tmp_path):
    log = tmp_path / "x.log"
    assert console.tail(str(log)) == ""  # no log yet: empty output, not an error
    log.write_bytes(b"boot\n" * 10 + b"login: ")
    assert console.tail(str(log), 7) == "login: "
    assert console.tail(str(log)) == "boot\n" * 10 + "login: "


def test_tail_survives_a_cut_multibyte_character(tmp_path):
    log = tmp_path / "x.log"
    log.write_bytes("ö!".encode())  # c3 b6 21
    assert console.tail(str(log), 2) == "\ufffd!"


def test_prepare_clears_an_old_log_and_remove_deletes(tmp_path):
    config = {"CONSOLE_DIR": str(tmp_path / "console")}
    console.prepare(config, ID)
    path = console.console_log_path(config, ID)
    with open(path, "w") as f:
        f.write("previous boot\n")
    console.prepare(config, ID)
    assert not os.path.exists(path)
    open(path, "w").close()
    assert console.remove(config, ID) is True and console.remove(config, ID) is False
