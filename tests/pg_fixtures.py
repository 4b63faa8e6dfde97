"""Pytest fixtures for PostgreSQL; import them in conftest.py:

    from tests.pg_fixtures import pg_server, pg_url  # noqa: F401
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pgserver import PgTarget, pg_from_env, start_postgres


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgTarget]:
    """One PostgreSQL server per session ($VAULT_TEST_PG_URL if set, else a throwaway one).

    Its folder is not under pytest's temporary root: every pytest run resets that root to 0700, which
    takes the postgres user's way in from a server another run is starting at that moment.
    """
    base = Path(tempfile.mkdtemp(prefix="vault-test-pg-"))
    server = pg_from_env() or start_postgres(base / "pg")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def new_database_url(server: PgTarget) -> str:
    """Create a uniquely named database on ``server`` and return its SQLAlchemy URL."""
    name = f"vault_test_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    return server.url(name)


@pytest.fixture
def pg_url(pg_server: PgTarget) -> str:
    """SQLAlchemy URL of a fresh, uniquely named database for this test."""
    return new_database_url(pg_server)
