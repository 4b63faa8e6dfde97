"""4 processes × 4 threads against one SQLite file and one PostgreSQL database (statement 18)."""

from __future__ import annotations

import pytest

from .common import scaled
from .load import run_load


def _assert_no_lost_update(figures) -> None:
    assert figures.errors == {}  # no StorageError ("database is locked") or anything else reached a caller
    assert figures.problems == []
    assert figures.lost_updates == 0
    assert figures.increments > 0 and figures.rotations > 0 and figures.rule_changes > 0


@pytest.mark.slow
def test_processes_and_threads_on_one_sqlite_file(tmp_path):
    figures = run_load(tmp_path, ops_per_thread=scaled(25))
    _assert_no_lost_update(figures)


@pytest.mark.slow
@pytest.mark.postgres
def test_processes_and_threads_on_one_postgres_database(tmp_path, pg_url):
    figures = run_load(tmp_path, ops_per_thread=scaled(25), url=pg_url)
    _assert_no_lost_update(figures)
