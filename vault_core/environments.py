"""Environments and the seed's per-environment helper."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .models import _ParseEnum

if TYPE_CHECKING:  # pragma: no cover
    from .vault import Vault


class Environment(_ParseEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"
    TESTING = "testing"


def default_environment() -> Environment:
    """The environment named by ``VAULT_ENVIRONMENT`` (development when unset)."""
    return Environment.parse(os.environ.get("VAULT_ENVIRONMENT") or "development")


class EnvironmentSecrets:
    """Read secrets of one environment with the seed's naming conventions."""

    def __init__(self, vault: "Vault", environment: Environment | str):
        self.vault = vault
        self.environment = Environment.parse(environment)

    def get(self, name: str, default: Any = None) -> Any:
        """The value of ``name`` in this environment, or ``default`` when missing."""
        value = self.vault.get_secret(name=name, environment=self.environment)
        return default if value is None else value

    def get_database_url(self) -> str | None:
        """The ``database_url`` secret of this environment."""
        return self.get("database_url")

    def get_api_key(self, service: str) -> str | None:
        """The ``api_key_<service>`` secret of this environment."""
        return self.get(f"api_key_{service}")

    def __repr__(self) -> str:
        return f"EnvironmentSecrets(environment={self.environment.value!r})"
