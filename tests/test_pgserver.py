"""The throwaway PostgreSQL server and its fixtures work."""

from __future__ import annotations

import psycopg

# Imported here so this test also runs without conftest.py (costs one extra server at most).
from tests.pg_fixtures import new_database_url
from tests.pgserver import PgTarget


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def test_pg_server_and_fresh_databases(pg_server: PgTarget, pg_url: str) -> None:  # noqa: F811
    other_url = new_database_url(pg_server)
    assert pg_url.startswith("postgresql+psycopg://")
    assert pg_url != other_url
    seen = []
    for url in (pg_url, other_url):
        with psycopg.connect(_libpq(url)) as conn:
            version, db = conn.execute("select version(), current_database()").fetchone()
            assert "PostgreSQL" in version
            seen.append(db)
    assert seen[0] != seen[1]
