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
