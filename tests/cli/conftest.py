"""A fake gateway for the CLI's unit tests: a Flask app answering canned JSON for the routes a
test declares, served by werkzeug on 127.0.0.1 in a thread, recording every request it gets.
The real gateway is exercised by the end-to-end tests."""
import json
import threading

import pytest
from click.testing import CliRunner
from flask import Flask, Response, request
from werkzeug.serving import make_server

from labcloud.cli import cli


class FakeApi:
    def __init__(self):
        self.routes = {}
        self.requests = []
        app = Flask("fake-labcloud")

        @app.route("/api/v1/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        def answer(path):
            seen = {"method": request.method, "path": "/" + path, "args": request.args.to_dict(),
                    "headers": dict(request.headers), "body": request.get_data()}
            self.requests.append(seen)
            canned = self.routes.get((request.method, "/" + path))
            if canned is None:
                return self._json(404, {"error": {"code": "not_found", "message": f"no route {path}",
                                                  "fields": {}}})
            status, body, headers = canned(seen) if callable(canned) else canned
            return self._json(status, body, headers)

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def _json(status, body, headers=None):
        text = "" if body is None else json.dumps(body)
        return Response(text, status=status, headers=headers or {},
                        content_type="application/json" if text else None)

    def reply(self, method, path, body=None, status=200, headers=None):
        self.routes[(method, path)] = (status, body, headers)

    def reply_with(self, method, path, function):
        """function(seen_request) -> (status, body, headers)"""
        self.routes[(method, path)] = function

    def error(self, method, path, status, message, fields=None, code="invalid_input", headers=None):
        self.reply(method, path, {"error": {"code": code, "message": message, "fields": fields or {}}},
                   status, headers)

    def calls(self, method=None, path=None):
        return [r for r in self.requests if (method is None or r["method"] == method)
                and (path is None or r["path"] == path)]

    def body(self, method, path):
        """The JSON body of the last such request."""
        return json.loads(self.calls(method, path)[-1]["body"])

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def api():
    fake = FakeApi()
    yield fake
    fake.stop()


@pytest.fixture
def config_home(tmp_path):
    return tmp_path / "config"


@pytest.fixture
def labcloud(api, config_home, monkeypatch):
    """Run `labcloud ARGS` in-process against the fake API, logged in by LABCLOUD_TOKEN unless the
    test passes env. Returns click's Result (stdout and stderr apart)."""
    for name in ("LABCLOUD_URL", "LABCLOUD_TOKEN", "LABCLOUD_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))

    def run(*args, env=None, input=None, token="t0ken"):
        base = {"LABCLOUD_URL": api.url}
        if token:
            base["LABCLOUD_TOKEN"] = token
        return CliRunner().invoke(cli, list(args), env={**base, **(env or {})}, input=input,
                                  prog_name="labcloud")
    return run
