"""The change counter (vault_state.change_seq): caches above the vault reload after a change, never after a read.

SQLite's ``data_version`` moves at every commit, a read's audit row included, so a cache keyed on it
re-listed after every read anywhere (issue 19.3). These tests count the listings of
``vault_core.streamlit.secrets`` on SQLite and on PostgreSQL, with the reads and the change made by
another process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.test_change_signal import _counting_listings
from vault_core.storage.change_signal import change_signal
from vault_core.streamlit import VaultSecrets

ROOT = Path(__file__).resolve().parent.parent
_OTHER = textwrap.dedent("""
    import sys
    from vault_core import open_vault
    url = sys.argv[2] if sys.argv[2] != "-" else None
    vault = open_vault(sys.argv[1], database_url=url, principal="owner", create=False)
    if sys.argv[3] == "read":
        for _ in range(5):
            assert vault.get_secret("db/password", "development") is not None
    else:
        vault.update_secret("db/password", "development", value="v2")
    vault.storage.dispose()
""")


def _other_process(vault, tmp_path, action: str) -> None:
    url = vault.storage.url if vault.storage.backend == "postgresql" else "-"
    subprocess.run([sys.executable, "-c", _OTHER, str(tmp_path / "vault"), url, action], cwd=ROOT,
                   capture_output=True, text=True, check=True)


def _wait_for_stamp(vault, old, bound: float = 60.0):
    """On PostgreSQL the other process's change arrives as a notification (a failure bound, not a timing)."""
    sig = change_signal(vault.storage)
    deadline = time.monotonic() + bound
    while sig.stamp() == old:
        assert time.monotonic() < deadline, "the other process's change never moved the stamp"
        time.sleep(0.002)


def _cached_mapping(vault):
    vault.store_secret("db/password", "v1", environment="development")
    vault.store_secret("api_key", "k1", environment="development")
    sig = change_signal(vault.storage)
    if vault.storage.backend == "postgresql":
        sig.interval = 1e9  # the fallback tick cannot move: only a change can
    mapping = VaultSecrets("development", vault=vault, identity=None)
    assert mapping.db.password == "v1" and mapping["api_key"] == "k1"
    return mapping, sig


def test_reads_here_and_in_another_process_do_not_reload_the_cache(any_vault, tmp_path):
    mapping, sig = _cached_mapping(any_vault)
    listings = _counting_listings(any_vault)
    rows = len(any_vault.get_audit_log(limit=1000))
    for _ in range(5):  # audited reads in this process, each committing its audit row
        assert any_vault.get_secret("api_key", "development") == "k1"
    _other_process(any_vault, tmp_path, "read")
    assert len(any_vault.get_audit_log(limit=1000)) >= rows + 10  # both processes' read rows committed
    for _ in range(20):
        assert mapping.db.password == "v1" and mapping["api_key"] == "k1"
    assert listings == []


def test_a_change_in_another_process_reloads_once(any_vault, tmp_path):
    mapping, sig = _cached_mapping(any_vault)
    listings = _counting_listings(any_vault)
    before = sig.stamp()
    _other_process(any_vault, tmp_path, "change")
    _wait_for_stamp(any_vault, before)
    assert mapping.db.password == "v2"
    for _ in range(20):  # the read of the new value committed an audit row: no second reload
        assert mapping.db.password == "v2" and mapping["api_key"] == "k1"
    assert len(listings) == 1


def test_a_change_moves_the_counter_and_a_read_does_not(any_vault):
    from vault_core.storage import repos

    def counter():
        with any_vault.storage.transaction(write=False) as tx:
            return repos.state.get_state(tx)["change_seq"]

    any_vault.store_secret("db/password", "v1", environment="development")
    start = counter()
    any_vault.get_secret("db/password", "development")
    assert counter() == start
    any_vault.update_secret("db/password", "development", value="v2")
    assert counter() > start
