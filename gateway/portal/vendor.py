"""The portal's third-party assets: npm packages fetched once at set-up (`make` runs this), checked
against their registry integrity hash, and served by the gateway; nothing comes from a CDN at run
time. `python -m gateway.portal.vendor` is idempotent: a file already there with the right hash is
kept.

htmx: live parts of pages (polled fragments) without hand-written request code.
Pico CSS: readable, responsive styling of plain semantic HTML (labels, forms, tables), laptop and phone.
"""
import base64
import hashlib
import io
import os
import sys
import tarfile
import urllib.request

VENDOR_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static", "vendor")
REGISTRY = os.environ.get("NPM_REGISTRY", "https://registry.npmjs.org")

# (file served, npm tarball path, member inside the tarball, tarball's sha512 integrity)
PACKAGES = [
    ("htmx.min.js", "htmx.org/-/htmx.org-2.0.11.tgz", "package/dist/htmx.min.js",
     "sha512-Thx/WtpeOQqSrqBCw/A1cwGJGg4UrVa3+sW0GmrM3p4gJgO89ecH4qtbnyzDDWFvBTqjnIMCgELTNt636dtamA=="),
    ("pico.min.css", "@picocss/pico/-/pico-2.1.1.tgz", "package/css/pico.min.css",
     "sha512-kIDugA7Ps4U+2BHxiNHmvgPIQDWPDU4IeU6TNRdvXQM1uZX+FibqDQT2xUOnnO2yq/LUHcwnGlu1hvf4KfXnMg=="),
]


def _integrity(data):
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _stamp(name):
    return os.path.join(VENDOR_DIR, f".{name}.integrity")


def missing():
    """The asset files not yet fetched (or fetched from another version)."""
    out = []
    for name, _path, _member, integrity in PACKAGES:
        try:
            with open(_stamp(name)) as stamp:
                fetched = stamp.read().strip()
        except OSError:
            fetched = ""
        if fetched != integrity or not os.path.exists(os.path.join(VENDOR_DIR, name)):
            out.append(name)
    return out


def fetch(name):
    _name, path, member, integrity = next(p for p in PACKAGES if p[0] == name)
    with urllib.request.urlopen(f"{REGISTRY}/{path}", timeout=60) as answer:
        tarball = answer.read()
    if _integrity(tarball) != integrity:
        raise SystemExit(f"{path}: integrity mismatch (expected {integrity})")
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        content = archive.extractfile(member).read()
    os.makedirs(VENDOR_DIR, exist_ok=True)
    target = os.path.join(VENDOR_DIR, name)
    with open(target + ".tmp", "wb") as out:
        out.write(content)
    os.replace(target + ".tmp", target)
    with open(_stamp(name), "w") as stamp:
        stamp.write(integrity + "\n")


def main():
    todo = missing()
    for name in todo:
        print(f"fetching the portal's {name}", file=sys.stderr)
        fetch(name)


if __name__ == "__main__":
    main()
