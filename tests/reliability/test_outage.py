"""Lost and full storage: PostgreSQL stopped (crash) and restarted under load; SQLite capped until full."""

from __future__ import annotations

import pytest

from vault_core import AuditFailure, StorageError

from .outage import run_postgres_outage, run_sqlite_full


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_stopped_under_load_fails_clearly_then_recovers(tmp_path):
    figures = run_postgres_outage(tmp_path)
    assert figures.problems == []  # every failure a StorageError naming the backend, never the URL/password
    assert figures.failed_while_down > 0 and set(figures.error_types) == {"StorageError"}
    assert all("postgresql" in m for m in figures.sample_messages)
    assert figures.recovered  # the first calls after the restart succeed
    assert figures.acknowledged > 0 and figures.lost_writes == 0  # and the chain verifies (problems == [])


def test_full_sqlite_file_fails_cleanly_and_recovers(tmp_path):
    figures = run_sqlite_full(tmp_path)
    assert figures.problems == []  # integrity ok while full; chain verifies and acks present after room
    assert figures.failed_while_down > 0
    assert set(figures.error_types) <= {StorageError.__name__, AuditFailure.__name__}
    assert figures.recovered and figures.lost_writes == 0


@pytest.mark.xfail(strict=True, reason="AuditFailure from a full database says only '(OperationalError)': "
                   "facade/base.py _append must carry the storage reason (see the reliability report)")
def test_full_sqlite_file_errors_say_why(tmp_path):
    """An operator reading the error must learn that the sqlite database is full, whichever row failed."""
    figures = run_sqlite_full(tmp_path)
    assert figures.sample_messages
    for message in figures.sample_messages:
        assert "sqlite" in message and "full" in message, message
