"""The accounts service's own DependencyProviders: the CPU-heavy work (password hashing, key pair
generation) run off the eventlet hub, and its settings read once from the container's config."""
import dataclasses

from eventlet import tpool
from nameko.extensions import DependencyProvider

from common.quota import RESOURCES
from services.accounts import openssh, passwords

DEFAULT_PROJECT_QUOTA = {"instances": 10, "vcpus": 20, "memory_mib": 20480, "volume_gib": 100,
                         "floating_ips": 2, "volumes": 10}


class OffHubHasher:
    """passwords.Hasher whose slow methods run in a native thread (eventlet.tpool): argon2 holds
    the CPU for tens of milliseconds, which on the hub would stall every other RPC of the
    process (authenticate included) for that long."""

    def __init__(self, hasher):
        self._hasher = hasher

    def hash(self, password):
        return tpool.execute(self._hasher.hash, password)

    def verify(self, password_hash, password):
        return tpool.execute(self._hasher.verify, password_hash, password)

    def burn_verify_time(self, password):
        return tpool.execute(self._hasher.burn_verify_time, password)

    def needs_rehash(self, password_hash):
        return self._hasher.needs_rehash(password_hash)  # parses the hash's header: cheap


class Passwords(DependencyProvider):
    """Injects an OffHubHasher. Config PASSWORD_HASH (optional): {time_cost, memory_cost_kib,
    parallelism}; unset keys keep argon2-cffi's defaults."""

    def setup(self):
        cost = self.container.config.get("PASSWORD_HASH") or {}
        self.hasher = OffHubHasher(passwords.Hasher(**cost))

    def get_dependency(self, worker_ctx):
        return self.hasher


@dataclasses.dataclass(frozen=True)
class Settings:
    token_ttl_seconds: int = 3600
    rate_limit_per_username: int = 10
    rate_limit_per_address: int = 60
    rate_limit_window: int = 60
    public_url: str = "http://127.0.0.1:8080"
    password_link_hours: int = 72
    default_project_quota: dict = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_PROJECT_QUOTA))

    @classmethod
    def from_config(cls, config):
        defaults = cls()
        numbers = {field.name: int(config.get(field.name.upper(), getattr(defaults, field.name)))
                   for field in dataclasses.fields(cls)
                   if isinstance(getattr(defaults, field.name), int)}
        quota = dict(DEFAULT_PROJECT_QUOTA, **(config.get("DEFAULT_PROJECT_QUOTA") or {}))
        return cls(public_url=str(config.get("PUBLIC_URL", defaults.public_url)).rstrip("/"),
                   default_project_quota={r: _limit(quota.get(r)) for r in RESOURCES}, **numbers)


def _limit(value):
    """A limit from YAML: a number, or null/empty/"none" for unlimited."""
    if value is None or str(value).strip().lower() in ("", "none", "null"):
        return None
    return int(value)


class AccountsSettings(DependencyProvider):
    """Injects the Settings, read once when the container starts."""

    def setup(self):
        self.settings = Settings.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.settings


class KeyPairs(DependencyProvider):
    """Injects `generate(key_type, comment) -> (private_pem, public_line)`, run in a native
    thread: an RSA key takes a few hundred milliseconds of CPU."""

    def get_dependency(self, worker_ctx):
        return lambda key_type, comment="": tpool.execute(openssh.generate_key_pair, key_type, comment)
