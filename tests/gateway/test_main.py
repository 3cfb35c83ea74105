"""`python -m gateway` as a real process on a free port, against the test broker."""
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from nameko.rpc import rpc

from labcloud.rabbit import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Accounts:
    name = "accounts"

    @rpc
    def authenticate(self, token):
        return {"id": 7, "username": "alice", "role": "user"}


class Instances:
    name = "instances"

    @rpc
    def list_flavors(self):
        return [{"id": 1, "name": "small"}]


@pytest.fixture
def gateway(container_factory, rabbit_config, tmp_path):
    for cls in (Accounts, Instances):
        container_factory(cls, rabbit_config).start()
    port = free_port()
    env = dict(os.environ, AMQP_URI=rabbit_config["AMQP_URI"], LABCLOUD_PORT=str(port),
               RPC_POOL_SIZE="2", RPC_TIMEOUT="5")
    log = open(tmp_path / "gateway.log", "w+")
    process = subprocess.Popen([sys.executable, "-m", "gateway"], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(base + "/healthz", timeout=1)
            break
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"gateway did not start:\n{log.read()}")
            time.sleep(0.2)
    yield base, process
    if process.poll() is None:
        process.kill()
        process.wait()
    log.close()


def test_gateway_process_serves_and_stops_on_sigterm(gateway):
    base, process = gateway
    response = requests.get(base + "/healthz", timeout=5)
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    response = requests.get(base + "/api/v1/openapi.json", timeout=5)
    assert response.status_code == 200 and response.json()["openapi"].startswith("3.")
    response = requests.get(base + "/api/v1/flavors", timeout=10,
                            headers={"Authorization": "Bearer t"})
    assert response.status_code == 200 and response.json()[0]["name"] == "small"
    assert requests.get(base + "/api/v1/flavors", timeout=5).status_code == 401

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
