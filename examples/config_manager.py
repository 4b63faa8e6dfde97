"""The seed's ``ConfigManager``: per-environment configuration read through ``EnvironmentSecrets``.

    config = ConfigManager(Environment.PRODUCTION)
    config.get_database_config()   # {'url': ..., 'pool_size': 10, 'timeout': 30}
    config.get_external_apis()     # {'openai': ..., 'stripe': ..., 'github': ...}
"""

from __future__ import annotations

from typing import Any

from vault_core import Environment, EnvironmentSecrets, Vault, get_vault

SERVICES = ("openai", "stripe", "github")


class ConfigManager:
    """Application configuration whose secrets live in the vault, one environment at a time."""

    def __init__(self, environment: Environment | str, vault: Vault | None = None):
        # The seed reads ``self.environment`` without setting it; we keep the parsed one.
        self.env_secrets = EnvironmentSecrets(vault or get_vault(), environment)
        self.environment = self.env_secrets.environment

    def get_database_config(self) -> dict[str, Any]:
        return {
            "url": self.env_secrets.get_database_url(),
            "pool_size": 10 if self.environment == Environment.PRODUCTION else 5,
            "timeout": 30,
        }

    def get_external_apis(self) -> dict[str, str | None]:
        """API keys by service (None where the environment has none)."""
        return {service: self.env_secrets.get_api_key(service) for service in SERVICES}

    def __repr__(self) -> str:  # never the values
        return f"ConfigManager(environment={self.environment.value!r})"
