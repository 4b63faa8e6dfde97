"""Pytest fixtures for PostgreSQL; import them in conftest.py:

    from tests.pg_fixtures import pg_server, pg_url  # noqa: F401
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.pgserver import PgTarget, pg_from_env, start_postgres


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgTarget]:
    """One PostgreSQL server per session ($VAULT_TEST_PG_URL if set, else a throwaway one)."""
    server = pg_from_env() or start_postgres(tmp_path_factory.mktemp("pg"))
    try:
        yield server
    finally:
        server.stop()


def new_database_url(server: PgTarget) -> str:
    """Create a uniquely named database on ``server`` and return its SQLAlchemy URL."""
    name = f"vault_test_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    return server.url(name)


@pytest.fixture
def pg_url(pg_server: PgTarget) -> str:
    """SQLAlchemy URL of a fresh, uniquely named database for this test."""
    return new_database_url(pg_server)
