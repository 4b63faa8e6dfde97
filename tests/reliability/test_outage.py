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


def test_full_sqlite_file_errors_say_why(tmp_path):
    """An operator reading the error must learn that the sqlite database is full, whichever row failed."""
    figures = run_sqlite_full(tmp_path)
    assert figures.sample_messages
    for message in figures.sample_messages:
        assert "sqlite" in message and "full" in message, message


def test_unreachable_postgres_is_a_storage_error_not_a_raw_sqlalchemy_error():
    from tests.pgserver import _free_port
    from vault_core.storage import Storage

    storage = Storage(f"postgresql+psycopg://vault:pw-do-not-print@127.0.0.1:{_free_port()}/vault")
    with pytest.raises(StorageError) as info:
        with storage.transaction(write=False):
            pass
    assert "postgresql" in str(info.value) and "pw-do-not-print" not in str(info.value)


@pytest.mark.postgres
def test_audit_export_interrupted_by_lost_server_raises_storage_error(tmp_path):
    import shutil
    import tempfile
    from pathlib import Path

    from tests.pgserver import start_postgres

    from .common import open_test_vault

    pg_dir = Path(tempfile.mkdtemp(prefix="vault-export-pg-"))
    server = start_postgres(pg_dir / "pg")
    try:
        server.create_database("ex")
        vault = open_test_vault(tmp_path / "vault", server.url("ex"))
        vault.store_secret("ex/a", "value-ex", environment="development")
        rows = vault.export_audit("jsonl")  # audited and authorised now; rows are read as it is consumed
        server.stop_immediate()
        with pytest.raises(StorageError) as info:
            list(rows)
        assert "postgresql" in str(info.value)
        vault.storage.dispose()
    finally:
        server.stop()
        shutil.rmtree(pg_dir, ignore_errors=True)
