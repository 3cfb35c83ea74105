"""Configuration files: YAML with `${ENV_VAR:default}` overrides, parsed exactly as `nameko run
--config` parses them, so services, the host agent and the gateway read one format."""
import yaml
from nameko.cli.main import setup_yaml_parser


def load_config(path):
    setup_yaml_parser()
    with open(path) as fh:
        return yaml.safe_load(fh) or {}
