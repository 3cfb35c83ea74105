"""A small REST client for the CLI: the gateway URL and token come from the environment
(`LABCLOUD_URL`, default http://127.0.0.1:$LABCLOUD_PORT; `LABCLOUD_TOKEN`)."""
import os

import requests


class ClientError(Exception):
    pass


class ApiClient:
    def __init__(self, base_url, token):
        self.base = base_url.rstrip("/") + "/api/v1"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def from_environment(cls):
        token = os.environ.get("LABCLOUD_TOKEN")
        if not token:
            raise ClientError("set LABCLOUD_TOKEN (POST /api/v1/tokens gives one)")
        url = os.environ.get("LABCLOUD_URL", f"http://127.0.0.1:{os.environ.get('LABCLOUD_PORT', '8080')}")
        return cls(url, token)

    def get(self, path):
        return self._request("GET", path, 200)

    def post(self, path, body, expect=201):
        return self._request("POST", path, expect, json=body)

    def _request(self, method, path, expect, **kwargs):
        try:
            resp = self.http.request(method, self.base + path, timeout=30, **kwargs)
        except requests.RequestException as exc:
            raise ClientError(f"cannot reach labcloud at {self.base}: {exc}") from None
        if resp.status_code != expect:
            try:
                error = resp.json()["error"]
                message = error["message"] + "".join(
                    f"; {field}: {', '.join(map(str, problems))}" for field, problems in (error.get("fields") or {}).items())
            except (ValueError, KeyError, TypeError, AttributeError):
                message = resp.text[:200]
            raise ClientError(f"{resp.status_code}: {message}")
        return resp.json()

    def find_instance(self, name_or_id, include_deleted=False):
        """By name or id; a live instance before deleted ones of that name (newest deleted first)."""
        listed = self.get("/instances?include_deleted=true" if include_deleted else "/instances")
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
