"""A canary value appears nowhere it should not (design statement 11).

Browser page HTML is left to tests/e2e, which asserts the canary's absence from ``page.content()``
itself (no page HTML is saved to disk to scan here).
"""

from __future__ import annotations

import pytest

from .leak import run_leak_scan


def _assert_no_leak(figures, capfd) -> None:
    captured = capfd.readouterr()
    stray = [n for n in ("CANARY-",) if n in captured.err or n in captured.out]
    assert figures.hits == []
    assert stray == []  # nothing printed to this process's stdout/stderr either
    assert figures.exceptions >= 8 and figures.places > 20
    assert figures.log_records > 0 and figures.control_found  # the scan itself works


def test_canary_value_leaks_nowhere_sqlite(tmp_path, capfd):
    _assert_no_leak(run_leak_scan(tmp_path), capfd)


@pytest.mark.postgres
def test_canary_value_leaks_nowhere_postgres(tmp_path, capfd, pg_server, pg_url):
    data_dir = getattr(pg_server, "data_dir", None)  # a private server: scan its files too
    _assert_no_leak(run_leak_scan(tmp_path, pg_url, data_dir), capfd)
