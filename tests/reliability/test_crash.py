"""kill -9 during writes (design statement 17), on SQLite and on PostgreSQL.

Bounded here (20 kills on SQLite, 10 on PostgreSQL, times ``VAULT_FAULT_SCALE``);
``python tools/fault_suite.py --full`` runs the issue's 100 and 50.
"""

from __future__ import annotations

import pytest

from .common import scaled
from .crash import run_crash_loop


def _assert_whole(figures) -> None:
    assert figures.problems == []
    assert figures.lost_writes == 0
    assert figures.acknowledged > figures.kills  # the writers did real work before each kill
    assert figures.versions_checked > 0 and figures.chain_rows > 0


@pytest.mark.slow
def test_kill9_sqlite_keeps_every_acknowledged_write(tmp_path):
    figures = run_crash_loop(tmp_path, kills=scaled(20), seed=11)
    assert figures.kills == scaled(20)
    _assert_whole(figures)


@pytest.mark.slow
@pytest.mark.postgres
def test_kill9_postgres_keeps_every_acknowledged_write(tmp_path, pg_url):
    figures = run_crash_loop(tmp_path, kills=scaled(10), url=pg_url, seed=12)
    assert figures.kills == scaled(10)
    _assert_whole(figures)
