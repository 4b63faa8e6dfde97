"""Shared fixtures: vaults on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import os

import pytest

from tests.console_fixtures import console  # noqa: F401  (fixture)
from tests.pg_fixtures import pg_server, pg_url  # noqa: F401  (fixtures)
from vault_core import open_vault

# Tests must not pick up a developer's environment.
for _var in ("VAULT_PATH", "VAULT_DATABASE_URL", "VAULT_MASTER_KEY", "VAULT_MASTER_KEY_FILE", "VAULT_PASSPHRASE",
             "VAULT_PRINCIPAL", "VAULT_ENVIRONMENT"):
    os.environ.pop(_var, None)


@pytest.fixture
def vault(tmp_path):
    """A fresh local SQLite vault owned by this process (admin)."""
    v = open_vault(tmp_path / "vault", principal="owner")
    yield v
    v.storage.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def any_vault(request, tmp_path):
    """The same vault API on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        v = open_vault(tmp_path / "vault", principal="owner")
    else:
        url = request.getfixturevalue("pg_url")
        v = open_vault(tmp_path / "vault", database_url=url, principal="owner")
    yield v
    v.storage.dispose()
