"""The portal as a browser without JavaScript uses it, for the end-to-end tests: a tiny HTML reader
(the standard library's parser, into a tree) and a client that keeps the session cookie, sends every
form with the CSRF token of the page it is on and reads the HTML of the answer.

A client's session comes either from logging in through the /login form (`Portal.login`) or from an
API token the test already has, set as the session cookie (what /login sets): `Portal(url, token)`."""
import html.parser
import re
import uuid

import requests

from gateway.portal.session import SESSION_COOKIE

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
CSRF_TOKEN = re.compile(r"[0-9a-f]{64}")  # an HMAC-SHA256 in hex (gateway/portal/session.py)


# ----- a tiny HTML reader ---------------------------------------------------------------------------

class Node:
    def __init__(self, tag, attrs, parent=None):
        self.tag, self.attrs, self.parent, self.children = tag, dict(attrs), parent, []

    def get(self, name, default=None):
        return self.attrs.get(name, default)

    def text(self):
        return " ".join(" ".join(c if isinstance(c, str) else c.text() for c in self.children).split())

    def walk(self):
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.walk()

    def find_all(self, tag=None, **attrs):
        """attrs: HTML attribute names, a trailing _ dropped (class_ is class) and, after data_ or
        aria_, - written _ (data_user is data-user); other names as they are (csrf_token)."""
        attrs = {_attribute(k): v for k, v in attrs.items()}
        return [n for n in self.walk() if (tag is None or n.tag == tag)
                and all(n.get(k) == v for k, v in attrs.items())]

    def find(self, tag=None, **attrs):
        found = self.find_all(tag, **attrs)
        return found[0] if found else None

    def by_id(self, element_id):
        return self.find(id=element_id)


def _attribute(keyword):
    if keyword.endswith("_"):
        return keyword.rstrip("_")
    return keyword.replace("_", "-") if keyword.startswith(("data_", "aria_")) else keyword


class TreeBuilder(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("document", {})

    def handle_starttag(self, tag, attrs):
        node = Node(tag, [(k, "" if v is None else v) for k, v in attrs], self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, [(k, "" if v is None else v) for k, v in attrs], self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse(text):
    builder = TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def csrf_token(carrier, what="the page"):
    """The CSRF token that `carrier` (a form, or a whole page: its first one) carries."""
    field = carrier.find("input", name="csrf_token")
    assert field is not None and field.get("value"), f"{what} carries no CSRF token"
    assert CSRF_TOKEN.fullmatch(field.get("value")), f"{what}: not a CSRF token: {field.get('value')!r}"
    return field.get("value")


# ----- a browser without JavaScript -----------------------------------------------------------------

class Portal:
    def __init__(self, base_url, token=None):
        """A browser on the portal at `base_url`: logged out, or with the API `token` as its session."""
        self.base = base_url.rstrip("/")
        self.http = requests.Session()
        if token is not None:
            self.http.cookies.set(SESSION_COOKIE, token)

    def get(self, path, expect=200):
        resp = self.http.get(self.base + path, timeout=30, allow_redirects=False)
        if expect is not None:
            assert resp.status_code == expect, f"GET {path}: {resp.status_code} {resp.text[:2000]}"
        return resp, parse(resp.text)

    def csrf(self, path):
        """The CSRF token of this browser's forms, as the page at `path` (answering 200) carries it."""
        _resp, doc = self.get(path)
        return csrf_token(doc, f"GET {path}")

    def submit(self, doc, action, data=None, files=None, expect=None):
        """POST the form of `doc` that posts to `action`, with that form's own CSRF token."""
        form = doc.find("form", action=action)
        assert form is not None, f"no form posting to {action}"
        if files:
            assert form.get("enctype") == "multipart/form-data", "a file needs a multipart form"
        return self.post(action, form, data, files, expect)

    def post(self, action, carrier, data=None, files=None, expect=None):
        """POST to `action` with the CSRF token found in `carrier` (a form or a whole page)."""
        token = csrf_token(carrier, f"the form to {action}")
        resp = self.http.post(self.base + action, data=dict(data or {}, csrf_token=token),
                              files=files, timeout=120, allow_redirects=False)
        if expect is not None:
            assert resp.status_code == expect, f"POST {action}: {resp.status_code} {resp.text[:3000]}"
        return resp, parse(resp.text)

    def try_login(self, username, password):
        """Send the login form; the answer, whatever it is."""
        _resp, doc = self.get("/login")
        return self.submit(doc, "/login", {"username": username, "password": password, "next": "/"})

    def login(self, username, password):
        """Log in through the login form (it must let them in); this browser, with the session."""
        resp, _page = self.try_login(username, password)
        assert resp.status_code == 303 and resp.headers["Location"] == "/", resp.text[:2000]
        return self


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def field_error(page, input_id):
    """The message shown under the input `input_id`, which says it is invalid."""
    field = page.by_id(input_id)
    assert field is not None, f"no input {input_id}"
    assert field.get("aria-invalid") == "true", f"{input_id} is not marked invalid"
    assert field.get("aria-describedby") == f"{input_id}-error"
    message = page.by_id(f"{input_id}-error")
    assert message is not None and message.text(), f"no message under {input_id}"
    return message.text()
