"""Serial console logs: QEMU writes each guest's ttyS0 to `<CONSOLE_DIR>/<instance_id>.log` (see
domain_xml.py); the agent serves their tail as console output (EC2 GetConsoleOutput)."""
import os
import uuid

DEFAULT_CONSOLE_DIR = "var/console"
DEFAULT_MAX_BYTES = 65536


def console_dir(config):
    # Absolute: the path goes into the domain XML and libvirtd does not share our working directory.
    return os.path.abspath(config.get("CONSOLE_DIR") or DEFAULT_CONSOLE_DIR)


def console_log_path(config, instance_id):
    return os.path.join(console_dir(config), f"{instance_id}.log")


def prepare(config, instance_id):
    """Before a new domain is defined: the directory exists and no log of an earlier domain with
    this id is left to be mistaken for this one's boot."""
    os.makedirs(console_dir(config), exist_ok=True)
    remove(config, instance_id)


def remove(config, instance_id):
    """True when there was a log to remove."""
    try:
        os.unlink(console_log_path(config, instance_id))
    except FileNotFoundError:
        return False
    return True


def present(config):
    """The instance ids with a console log in CONSOLE_DIR (files named `<uuid>.log` only)."""
    try:
        names = os.listdir(console_dir(config))
    except FileNotFoundError:
        return []
    found = []
    for name in sorted(names):
        stem, ext = os.path.splitext(name)
        try:
            if ext == ".log" and str(uuid.UUID(stem)) == stem:
                found.append(stem)
        except ValueError:
            continue  # not one of ours
    return found


def tail(path, max_bytes=DEFAULT_MAX_BYTES):
    """The last `max_bytes` bytes of the log as text ('' when there is no log). Bytes that are not
    UTF-8 (a cut multi-byte character, binary noise) become U+FFFD rather than an error."""
    try:
        with open(path, "rb") as log:
            size = log.seek(0, os.SEEK_END)
            log.seek(max(0, size - max_bytes))
            data = log.read(max_bytes)
    except FileNotFoundError:
        return ""
    return data.decode("utf-8", errors="replace")
