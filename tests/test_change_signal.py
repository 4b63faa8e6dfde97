"""The change signal above the vault (storage/change_signal.py): PostgreSQL LISTEN/NOTIFY across processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vault_core import open_vault
from vault_core.storage.change_signal import PgChangeSignal, change_signal
from vault_core.streamlit import VaultSecrets

ROOT = Path(__file__).resolve().parent.parent
_CHANGE = textwrap.dedent("""
    import sys, time
    from vault_core import open_vault
    vault = open_vault(sys.argv[1], database_url=sys.argv[2], principal="owner", create=False)
    vault.update_secret("db/password", "development", value="v2")
    print(time.time(), flush=True)  # after the commit (and so after the NOTIFY was sent)
""")


def _wait(predicate, what: str, bound: float = 60.0) -> None:
    """Wait for ``predicate`` (a failure bound, not a timing threshold)."""
    deadline = time.monotonic() + bound
    while not predicate():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.002)


@pytest.fixture
def pg_vault(tmp_path, pg_url):
    v = open_vault(tmp_path / "vault", database_url=pg_url, principal="owner")
    yield v
    v.storage.dispose()


def _counting_listings(vault) -> list:
    """Every vault call that lists secrets (alone, or with a value read after a change), as (method, args)."""
    calls: list = []
    for method in ("secret_versions", "listing", "read_listed"):
        real = getattr(vault, method)

        def counted(*args, _real=real, _method=method, **kwargs):
            calls.append((_method, args))
            return _real(*args, **kwargs)

        setattr(vault, method, counted)
    return calls


@pytest.mark.postgres
def test_a_change_in_another_process_is_seen_through_its_notification(pg_vault, pg_url, tmp_path, capsys):
    pg_vault.store_secret("db/password", "v1", environment="development")
    sig = change_signal(pg_vault.storage)
    assert isinstance(sig, PgChangeSignal) and sig.stamp() is not None
    sig.interval = 1e9  # the fallback tick cannot move: only a notification can
    mapping = VaultSecrets("development", vault=pg_vault, identity=None)
    assert mapping.db.password == "v1"
    listings = _counting_listings(pg_vault)
    for _ in range(50):  # cached reads on PostgreSQL cost no query at all
        assert mapping.db.password == "v1"
    assert listings == []
    seen = sig.notifications
    out = subprocess.run([sys.executable, "-c", _CHANGE, str(tmp_path / "vault"), pg_url], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    committed = float(out.stdout.split()[-1])
    _wait(lambda: sig.notifications > seen, "the other process's NOTIFY")
    assert mapping.db.password == "v2" and len(listings) == 1
    with capsys.disabled():  # measured, not asserted: the commit-to-notification delay
        print(f"\n  LISTEN/NOTIFY: notification received {(sig.last_notified - committed) * 1e3:+.2f} ms from the "
              "other process's return from update_secret (negative: before it returned)")


@pytest.mark.postgres
def test_own_changes_count_at_once_and_a_rolled_back_change_sends_nothing(pg_vault):
    sig = change_signal(pg_vault.storage)
    sig.interval = 1e9
    listening = sig.notifications  # 1: counted when LISTEN was in place
    pg_vault.store_secret("token", "v1", environment="development")
    mapping = VaultSecrets("development", vault=pg_vault, max_age=3600)
    assert mapping.token == "v1"
    stamp = sig.stamp()
    pg_vault.store_secret("token", "v2", environment="development")
    moved = sig.stamp()
    assert moved != stamp and mapping.token == "v2"  # the same process: no wait for the notification
    _wait(lambda: sig.echoes >= 2, "the echoes of this process's own two notifications")
    assert sig.notifications == listening and sig.stamp() == moved  # an own change moves the stamp once
    before = sig.echoes
    with pytest.raises(RuntimeError):
        with pg_vault.storage.transaction() as tx:
            tx.conn.exec_driver_sql("SELECT 1")
            raise RuntimeError("rolled back")
    pg_vault.store_secret("token", "v3", environment="development")
    _wait(lambda: sig.echoes > before, "the committed change's notification")
    time.sleep(0.2)  # room for a wrongly sent second notification to arrive
    assert sig.echoes == before + 1 and sig.notifications == listening


@pytest.mark.postgres
def test_the_fallback_tick_moves_the_stamp_without_any_notification(pg_vault):
    sig = change_signal(pg_vault.storage)
    sig.interval = 0.05
    first = sig.stamp()
    _wait(lambda: sig.stamp() != first, "a fallback tick")
    assert sig.stamp()[:2] == first[:2]  # nothing changed: only the tick moved
