"""docker-compose.yml is validated by Debian's docker-compose (no Docker engine runs here)."""
import os
import shutil
import subprocess

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCALABLE = ["accounts", "network", "storage", "instances", "metrics"]


@pytest.fixture(scope="module")
def compose():
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is missing: `make test` installs Debian's docker-compose")
    out = subprocess.run(["docker-compose", "config"], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "LABCLOUD_ADMIN_PASSWORD": "x"})
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def test_every_piece_is_a_service(compose):
    assert set(SCALABLE + ["gateway", "hostagent", "rabbitmq", "postgres", "mailcatcher"]) <= set(compose["services"])


@pytest.mark.parametrize("name", SCALABLE)
def test_services_can_be_scaled(compose, name):
    service = compose["services"][name]
    assert "container_name" not in service and not service.get("ports"), \
        f"{name} would collide when scaled"
    assert service["command"] == ["labcloud", "serve", name]
    assert service["environment"]["AMQP_URI"].startswith("pyamqp://")


def test_mail_goes_to_the_catcher_unless_a_relay_is_set(compose):
    env = compose["services"]["metrics"]["environment"]
    assert (env["SMTP_HOST"], str(env["SMTP_PORT"])) == ("mailcatcher", "1025")


def test_metrics_replicas_share_one_rrdcached_on_the_same_files(compose):
    metrics, daemon = compose["services"]["metrics"], compose["services"]["rrdcached"]
    host, port = metrics["environment"]["RRDCACHED_ADDRESS"].split(":")
    assert host == "rrdcached" and f"-l 0.0.0.0:{port}" in daemon["command"][-1]
    assert metrics["volumes"] == daemon["volumes"]  # the paths the service sends are the daemon's
    assert f"-b {metrics['environment']['METRICS_DIR']}" in daemon["command"][-1]
    assert "rrdcached" in metrics["depends_on"] and "container_name" not in daemon


def test_each_database_service_has_its_own_postgres_database(compose):
    urls = [compose["services"][n]["environment"]["DATABASE_URL"] for n in SCALABLE]
    assert all(u.startswith("postgresql+psycopg2://") for u in urls)
    assert len({u.rsplit("/", 1)[1] for u in urls}) == len(SCALABLE)
    init = open(os.path.join(REPO, "deploy", "postgres-init.sql")).read()
    for url in urls:
        assert f"CREATE DATABASE {url.rsplit('/', 1)[1]};" in init


def test_host_agent_reaches_the_hosts_libvirt(compose):
    agent = compose["services"]["hostagent"]
    assert agent["privileged"] is True
    assert any("/var/run/libvirt" in str(v) for v in agent["volumes"])


def test_dockerfile_copies_every_package():
    dockerfile = open(os.path.join(REPO, "Dockerfile")).read()
    for folder in ["common", "labcloud", "services", "hostagent", "gateway"]:
        assert f"COPY {folder} " in dockerfile


def test_the_gateway_listens_beyond_its_container(compose, monkeypatch):
    # gateway/config.yaml reads LABCLOUD_HOST; on 127.0.0.1 the published port would reach nothing.
    from common.config import load_config
    env = compose["services"]["gateway"]["environment"]
    monkeypatch.setenv("LABCLOUD_HOST", env["LABCLOUD_HOST"])
    assert load_config(os.path.join(REPO, "gateway", "config.yaml"))["HOST"] == "0.0.0.0"
