"""The CLI's REST client: where the gateway is, which token to send, and every API error as one
line. The only module of the CLI that speaks HTTP; the commands never reach RPC or a database.

Where the URL and the token come from, first found wins:
  url    `--url` of `labcloud login`, then LABCLOUD_URL, then the config file, then
         http://127.0.0.1:$LABCLOUD_PORT (8080)
  token  LABCLOUD_TOKEN, then the config file's token, which is only sent to the URL it was
         issued by (a LABCLOUD_URL naming another gateway does not get it)
The config file is ${XDG_CONFIG_HOME:-~/.config}/labcloud/config.json, written by `labcloud login`
(mode 600 in a directory of mode 700): {url, token, expires_at, username, user_id?, token_id?}.
"""
import json
import os
import re
import tempfile
from datetime import datetime, timezone

import requests

LOGIN_HINT = "run `labcloud login`"


class ClientError(Exception):
    """A problem the CLI reports to its user as one line."""


class NotLoggedIn(ClientError):
    pass


class ApiError(ClientError):
    """The gateway answered with an error: `{"error": {"code", "message", "fields"}}`."""

    def __init__(self, status, code, message, fields=None, retry_after=None, authenticated=False,
                 expires_at=None):
        self.status, self.code, self.message = status, code, message
        self.fields = fields or {}
        self.retry_after = retry_after
        self.session_ended = status == 401 and authenticated  # the token expired or was revoked
        super().__init__(self._one_line(authenticated, expires_at))

    def _one_line(self, authenticated, expires_at):
        fields = "; ".join(f"{field}: {_problems(problems)}" for field, problems in self.fields.items())
        if self.status == 401 and authenticated:
            why = f"your token expired at {expires_at}" if expires_at and _is_past(expires_at) else self.message
            return f"your session has ended ({why}): {LOGIN_HINT}"
        if self.status == 429:
            wait = f"try again in {self.retry_after} s" if self.retry_after else "try again later"
            return f"{self.message}: {wait} (Retry-After: {self.retry_after or '-'})"
        if fields and self.status == 400:
            return fields  # "flavor: unknown flavor"
        text = f"{self.message} ({fields})" if fields else self.message
        return f"{text} (HTTP {self.status})"


def _problems(problems):
    if isinstance(problems, (list, tuple)):
        return ", ".join(_problems(p) for p in problems)
    if isinstance(problems, dict):  # nested fields: {"0": {"name": [...]}}
        return "; ".join(f"{key}: {_problems(value)}" for key, value in problems.items())
    return str(problems)


def _is_past(timestamp):
    try:
        moment = datetime.fromisoformat(timestamp)
    except (TypeError, ValueError):
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment <= datetime.now(timezone.utc)


# -- the config file -----------------------------------------------------------------------------

def config_path():
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "labcloud", "config.json")


def load_config():
    path = config_path()
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ClientError(f"cannot read {path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ClientError(f"cannot read {path}: not a JSON object")
    return data


def save_config(data):
    """Write the whole file atomically, mode 600, in a directory of mode 700."""
    path = config_path()
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".config-", suffix=".json")  # mode 600
    except OSError as exc:
        raise ClientError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException as exc:
        os.unlink(temporary)
        if isinstance(exc, OSError):
            raise ClientError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    return path


def log_in(base_url, username, password):
    """POST /tokens and keep the token in the config file. Returns (the stored entry, its path)."""
    client = ApiClient(base_url)
    answer = client.post("/tokens", {"username": username, "password": password}, auth=False)
    entry = {"url": client.url, "token": answer["token"], "expires_at": answer.get("expires_at"),
             "username": answer.get("username") or username}
    user_id = answer.get("user_id") or (answer.get("user") or {}).get("id")
    if user_id:
        entry["user_id"] = user_id
    if answer.get("id") is not None:
        entry["token_id"] = answer["id"]
    return entry, save_config(entry)


def default_url():
    return f"http://127.0.0.1:{os.environ.get('LABCLOUD_PORT', '8080')}"


def _same_url(a, b):
    return (a or "").rstrip("/") == (b or "").rstrip("/")


# -- the client ----------------------------------------------------------------------------------

class ApiClient:
    def __init__(self, base_url, token=None, timeout=30, expires_at=None):
        self.url = base_url.rstrip("/")
        self.base = self.url + "/api/v1"
        self.token = token
        self.timeout = timeout
        self.expires_at = expires_at  # of a stored token: words the 401 line
        self.http = requests.Session()
        self.http.headers["Accept"] = "application/json"
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"
        self.config = {}
        self.token_from_config = False

    @classmethod
    def from_environment(cls, url=None, require_token=True):
        config = load_config()
        env_url = os.environ.get("LABCLOUD_URL")
        base = url or env_url or config.get("url") or default_url()
        token, expires_at = os.environ.get("LABCLOUD_TOKEN"), None
        if not token and config.get("token") and _same_url(base, config.get("url")):
            token, expires_at = config["token"], config.get("expires_at")
        if require_token and not token:
            raise NotLoggedIn(f"not logged in to {base}: {LOGIN_HINT} (or set LABCLOUD_TOKEN)")
        client = cls(base, token, expires_at=expires_at)
        client.config = config
        client.token_from_config = bool(token) and token == config.get("token")
        return client

    # HTTP -----------------------------------------------------------------------------------------

    def get(self, path, params=None):
        return self.request("GET", path, params=params)

    def post(self, path, body=None, expect=None, **kwargs):
        return self.request("POST", path, json=body, expect=expect, **kwargs)

    def put(self, path, body):
        return self.request("PUT", path, json=body)

    def patch(self, path, body):
        return self.request("PATCH", path, json=body)

    def delete(self, path, params=None):
        return self.request("DELETE", path, params=params)

    def get_bytes(self, path, params=None):
        """The answer's body as bytes (an image), errors as `request`."""
        return self.request("GET", path, params=params, raw=True)

    def request(self, method, path, expect=None, auth=True, params=None, raw=False, **kwargs):
        """The answer's JSON (None for an empty body; its bytes with `raw`). Any 2xx is a success
        unless `expect` names the one status wanted. Raises ApiError (one line) or ClientError."""
        headers = kwargs.pop("headers", {})
        if not auth:
            headers["Authorization"] = None  # requests drops a header set to None
        if params:
            params = {key: value for key, value in params.items() if value is not None}
        try:
            resp = self.http.request(method, self.base + path, params=params or None, headers=headers,
                                     timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ClientError(f"cannot reach labcloud at {self.url}: {_reason(exc)}") from None
        if not 200 <= resp.status_code < 300 or (expect and resp.status_code != expect):
            raise self._error(resp, authenticated=auth and bool(self.token))
        if raw:
            return resp.content
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise ClientError(f"{method} {path}: the answer is not JSON (HTTP {resp.status_code})") from None

    def _error(self, resp, authenticated):
        retry_after = resp.headers.get("Retry-After")
        try:
            error = resp.json()["error"]
            code, message, fields = error.get("code", "error"), error["message"], error.get("fields")
        except (ValueError, KeyError, TypeError, AttributeError):
            text = " ".join(resp.text.split())[:200]
            code, message, fields = "error", text or resp.reason or "error", None
        return ApiError(resp.status_code, code, message, fields if isinstance(fields, dict) else None,
                        retry_after=retry_after, authenticated=authenticated, expires_at=self.expires_at)

    # names or ids ---------------------------------------------------------------------------------

    def _find(self, kind, path, value, key="name", params=None):
        """By name first (names may be all digits), then by id."""
        listed = self.get(path, params=params)
        text = str(value)
        matches = [item for item in listed if str(item.get(key)) == text]
        if not matches:
            matches = [item for item in listed if str(item.get("id")) == text]
        if not matches:
            raise ClientError(f"no {kind} named {value}")
        if len(matches) > 1:
            ids = ", ".join(str(item["id"]) for item in matches)
            raise ClientError(f"several {kind}s are named {value} (ids {ids}): give the id")
        return matches[0]

    def find_project(self, value):
        return self._find("project", "/projects", value)

    def project_id(self, value):
        return None if value is None else self.find_project(value)["id"]

    def find_key(self, value):
        return self._find("key", "/keys", value)

    def find_flavor(self, value):
        return self._find("flavor", "/flavors", value)

    def find_image(self, value):
        return self._find("image", "/images", value)

    def find_subnet(self, value):
        return self._find("subnet", "/subnets", value)

    def find_volume(self, value):
        return self._find("volume", "/volumes", value)

    def find_snapshot(self, value):
        return self._find("snapshot", "/snapshots", value)

    def user_id(self, value, project=None):
        """A user's id: digits are an id (usernames start with a letter); a username is looked up
        in the project's members when a project is given (what a manager may read), else in
        GET /users (admins)."""
        if value is None:
            return None
        if str(value).isdigit():
            return int(value)
        if project is not None:
            members = self.get(f"/projects/{project}/members")
            for member in members:
                if member.get("username") == value:
                    return member.get("user_id", member.get("id"))
        try:
            return self._find("user", "/users", value, key="username")["id"]
        except ApiError as exc:
            if exc.status == 403:
                raise ClientError(f"cannot look up the user {value} by name (only an admin may list "
                                  "users): give the user's id") from None
            raise

    def me(self):
        """My user id: stored at login, else asked of the API."""
        if self.token_from_config and self.config.get("user_id"):
            return self.config["user_id"]
        try:
            return self.get("/users/me")["id"]
        except (ApiError, KeyError, TypeError) as exc:
            if isinstance(exc, ApiError) and exc.status in (401, 429):
                raise
            raise ClientError("cannot tell your user id: the gateway said none at login (no user_id "
                              "in the POST /tokens answer, no GET /users/me)") from None

    def find_instance(self, name_or_id, include_deleted=False):
        """By name or id; a live instance before deleted ones of that name (newest deleted first)."""
        listed = self.get("/instances", params={"include_deleted": "true"} if include_deleted else None)
        matches = [i for i in listed if name_or_id in (i["name"], i["id"])]
        if not matches:
            raise ClientError(f"no instance named {name_or_id}")
        live = [i for i in matches if i["state"] != "deleted"]
        return live[0] if live else sorted(matches, key=lambda i: i["created_at"])[-1]

    def ssh_endpoint(self, name_or_id):
        instance = self.find_instance(name_or_id)
        if instance["state"] != "running" or not instance.get("ssh"):
            raise ClientError(f"{instance['name']} is {instance['state']} and has no SSH endpoint yet")
        return instance["ssh"]


def _reason(exc):
    """requests' text for a refused connection is a paragraph; the errno part says it."""
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
    return found.group(1).strip() if found else str(exc)
