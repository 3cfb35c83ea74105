"""Every process's YAML configuration loads, with its environment overrides applied."""
import glob
import os

import pytest

from common.config import load_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(REPO, "*", "config.yaml")) +
                 glob.glob(os.path.join(REPO, "services", "*", "config.yaml")))


def test_every_process_has_a_config():
    names = {os.path.relpath(path, REPO) for path in CONFIGS}
    assert {"gateway/config.yaml", "hostagent/config.yaml"} <= names
    assert {f"services/{s}/config.yaml" for s in ("accounts", "network", "storage", "instances", "metrics")} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, REPO))
def test_config_loads_and_takes_overrides(path, monkeypatch):
    monkeypatch.setenv("AMQP_URI", "pyamqp://u:p@example.invalid:1//")
    config = load_config(path)
    assert config["AMQP_URI"] == "pyamqp://u:p@example.invalid:1//"
    assert config["LOGGING"]["disable_existing_loggers"] is False
    for key, value in config.items():
        assert not (isinstance(value, str) and "${" in value), f"{key} has an unexpanded placeholder"


def test_the_accounts_password_hash_cost_comes_from_the_environment(monkeypatch):
    """Unset: argon2-cffi's default cost; set (the e2e stacks do): that cost."""
    from services.accounts.passwords import Hasher
    path = os.path.join(REPO, "services", "accounts", "config.yaml")
    names = ("PASSWORD_HASH_TIME_COST", "PASSWORD_HASH_MEMORY_COST_KIB", "PASSWORD_HASH_PARALLELISM")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    unset = load_config(path)["PASSWORD_HASH"]
    assert unset == {"time_cost": None, "memory_cost_kib": None, "parallelism": None}
    assert Hasher(**unset).hash("a good passphrase").startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    for name, value in zip(names, ("1", "8", "1")):
        monkeypatch.setenv(name, value)
    cheap = load_config(path)["PASSWORD_HASH"]
    assert cheap == {"time_cost": 1, "memory_cost_kib": 8, "parallelism": 1}
    assert Hasher(**cheap).hash("a good passphrase").startswith("$argon2id$v=19$m=8,t=1,p=1$")
