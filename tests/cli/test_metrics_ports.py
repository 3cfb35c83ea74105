"""labcloud/metrics_ports.py: the agents' metrics credentials are made once per data dir and kept
(mode 0600), ports handed out in one start are distinct, and `labcloud run`'s switches."""
import json
import os
import socket
import stat

from labcloud import metrics_ports
from labcloud.cli import _switched_on
from labcloud.rabbit import free_port


def test_credentials_are_made_once_and_kept_private(tmp_path):
    user, password = metrics_ports.agent_credentials(str(tmp_path))
    path = tmp_path / metrics_ports.CREDENTIALS_FILE
    assert user == "metrics" and len(password) >= 20
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert metrics_ports.agent_credentials(str(tmp_path)) == (user, password)
    assert json.loads(path.read_text()) == {"user": user, "password": password}
    assert os.listdir(tmp_path) == [metrics_ports.CREDENTIALS_FILE]  # no temporary file left


def test_ports_of_one_start_are_distinct_and_agents_get_their_own_directory(tmp_path, monkeypatch):
    offered = iter([4001, 4001, 4002, 4001, 4003])  # a random pick may repeat
    monkeypatch.setattr(metrics_ports, "_candidate", lambda: next(offered))
    monkeypatch.setattr(metrics_ports, "_bindable", lambda port: True)
    taken = {4000}
    agents = metrics_ports.agent_endpoints(str(tmp_path), ["host1", "host2"], taken)
    assert [a.port for a in agents.values()] == [4001, 4002]
    assert metrics_ports.new_port(taken) == 4003 and taken == {4000, 4001, 4002, 4003}
    env = agents["host2"].env(str(tmp_path))
    assert env["METRICS_HTTP_PORT"] == "4002" and env["METRICS_HTTP_ADDRESS"] == "127.0.0.1"
    assert env["METRICS_HTTP_DIR"] == str(tmp_path / "agent-metrics" / "host2")
    assert (env["METRICS_HTTP_USER"], env["METRICS_HTTP_PASSWORD"]) == agents["host1"].auth
    assert agents["host1"].url == "http://127.0.0.1:4001"


def test_run_switches(monkeypatch):
    monkeypatch.delenv("LABCLOUD_METRICS_HTTP", raising=False)
    assert _switched_on("LABCLOUD_METRICS_HTTP")
    for off in ("off", "0", "false", "No"):
        monkeypatch.setenv("LABCLOUD_METRICS_HTTP", off)
        assert not _switched_on("LABCLOUD_METRICS_HTTP")
    monkeypatch.setenv("LABCLOUD_METRICS_HTTP", "on")
    assert _switched_on("LABCLOUD_METRICS_HTTP")


def test_ports_are_below_the_ephemeral_range_and_not_in_use(monkeypatch):
    """The kernel gives ephemeral ports to outgoing connections: a port picked there could be taken
    before the child process binds it. A port something listens on is passed over."""
    first = int(open(metrics_ports.EPHEMERAL_RANGE).read().split()[0])
    picked = {metrics_ports.new_port(set()) for _ in range(50)}
    assert all(metrics_ports.LOWEST_PORT <= port < first for port in picked)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        in_use, free = busy.getsockname()[1], free_port()
        offered = iter([in_use, free])
        monkeypatch.setattr(metrics_ports, "_candidate", lambda: next(offered))
        assert metrics_ports.new_port(set()) == free
