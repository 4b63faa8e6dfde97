"""Lost and full storage: PostgreSQL stopped under load, SQLite capped until full.

While storage is gone, calls must fail with a clear ``StorageError`` (naming the backend, never a
URL or its password); afterwards they succeed, nothing is half-written, acknowledged writes stay.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import event

from vault_core import StorageError, VaultError

from .common import check_consistency, open_test_vault

ENV = "development"


@dataclass
class OutageFigures:
    scenario: str
    operations: int = 0
    acknowledged: int = 0
    failed_while_down: int = 0
    faults_injected: int = 0
    error_types: Counter = field(default_factory=Counter)
    sample_messages: list[str] = field(default_factory=list)
    lost_writes: int = 0
    recovered: bool = False
    verify_while_full: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.lost_writes == 0 and self.recovered


class _Load:
    """Threads writing new versions; every acknowledged (name, version, value) is remembered."""

    def __init__(self, vault, names: list[str], figures: OutageFigures, forbidden: list[str]):
        self.vault, self.names, self.figures, self.forbidden = vault, names, figures, forbidden
        self.acked: list[tuple[str, int, str, str]] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in names]

    def _run(self, name: str) -> None:
        while not self.stop.is_set():
            value = secrets.token_hex(16)
            try:
                version = self.vault.update_secret(name, ENV, value=value)
                with self.lock:
                    self.acked.append((name, version, value, "update"))
            except Exception as exc:  # noqa: BLE001 - classified below
                self.note_error(exc, value)
                time.sleep(0.05)
            finally:
                with self.lock:
                    self.figures.operations += 1

    def note_error(self, exc: BaseException, value: str) -> None:
        msg = f"{type(exc).__name__}: {exc}"
        with self.lock:
            self.figures.failed_while_down += 1
            self.figures.error_types[type(exc).__name__] += 1
            shape = msg.split(" port ")[0][:90]  # one sample per kind of message
            if not any(m.startswith(shape) for m in self.figures.sample_messages):
                self.figures.sample_messages.append(msg)
            if not isinstance(exc, VaultError):
                self.figures.problems.append(f"undocumented exception: {msg[:300]}")
            for needle in [value, *self.forbidden]:
                if needle and needle in str(exc):
                    self.figures.problems.append(f"message echoes a secret or URL part: {msg[:200]}")

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()


def _check_acked(vault, acked, figures: OutageFigures) -> None:
    for name, version, value, op in acked:
        rows = vault.get_audit_log(name=name, operation=op, outcome="allowed", environment=ENV, limit=10_000)
        if vault.get_secret(name, ENV, version=version) != value or not any(r["version"] == version for r in rows):
            figures.lost_writes += 1
            figures.problems.append(f"acknowledged {name} v{version} missing")
    figures.acknowledged = len(acked)


def _private_database(server, password: str) -> str:
    """A role with a password and its own database: the URL carries a password that must never leak."""
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE vault_app LOGIN PASSWORD {}").format(sql.Literal(password)))
        conn.execute("CREATE DATABASE vault_outage OWNER vault_app")
    return f"postgresql+psycopg://vault_app:{password}@{server.host}:{server.port}/vault_outage"


def run_postgres_outage(workdir: Path, outages: int = 1, down_seconds: float = 1.5) -> OutageFigures:
    """Stop the server (``-m immediate``, a crash) under load, ``outages`` times; then check everything."""
    from tests.pgserver import start_postgres

    figures = OutageFigures("postgresql stopped under load")
    # not under pytest's tmp dir: concurrent pytest sessions reset it to 0700, locking the postgres user out
    pg_dir = Path(tempfile.mkdtemp(prefix="vault-outage-pg-"))
    server = start_postgres(pg_dir / "pg")
    password = "pw-" + secrets.token_hex(8)
    try:
        url = _private_database(server, password)
        vault = open_test_vault(workdir / "vault", url)
        names = [f"load/{i}" for i in range(3)]
        for name in names:
            vault.store_secret(name, "initial", environment=ENV, max_versions=1000)
        with _Load(vault, names, figures, [password, url, "postgresql+psycopg://"]) as load:
            for _ in range(outages):
                time.sleep(0.5)
                server.stop_immediate()
                figures.faults_injected += 1
                time.sleep(down_seconds)
                _probe_down(vault, figures, load)
                server.start()
                time.sleep(0.5)
        _check_recovered(vault, figures)
        _check_acked(vault, load.acked, figures)
        report = check_consistency(vault)
        if not report.ok:
            figures.problems.append(f"after restart: {report.integrity} chain={report.chain_ok} {report.problems[:3]}")
        vault.storage.dispose()
    finally:
        server.stop()
        shutil.rmtree(pg_dir, ignore_errors=True)
    return figures


def _probe_down(vault, figures: OutageFigures, load: _Load) -> None:
    """While down, a read, a store and a listing each fail with StorageError naming the backend."""
    for call in (lambda: vault.get_secret("load/0", ENV),
                 lambda: vault.store_secret("down/x", "v-down", environment=ENV),
                 lambda: vault.list_secrets()):
        try:
            call()
            figures.problems.append("a call succeeded while the server was down")
        except Exception as exc:  # noqa: BLE001
            load.note_error(exc, "v-down")
            if not isinstance(exc, StorageError) or vault.storage.backend not in str(exc):
                figures.problems.append(f"unclear failure while down: {type(exc).__name__}: {str(exc)[:200]}")


def _check_recovered(vault, figures: OutageFigures) -> None:
    """Right after the restart, every kind of call works again (first try, no retry by the caller)."""
    try:
        vault.store_secret("after/restart", "v-after", environment=ENV)
        assert vault.get_secret("after/restart", ENV) == "v-after"
        vault.update_secret("after/restart", ENV, value="v-after-2", cas=1)
        vault.list_secrets()
        figures.recovered = True
    except Exception as exc:  # noqa: BLE001
        figures.problems.append(f"not recovered after restart: {type(exc).__name__}: {str(exc)[:200]}")


def run_sqlite_full(workdir: Path, room_pages: int = 40, value_bytes: int = 3000) -> OutageFigures:
    """Cap the SQLite file (``PRAGMA max_page_count`` on every connection), write until full, make room."""
    figures = OutageFigures("sqlite file full")
    vault = open_test_vault(workdir / "vault")
    cap = {"pages": 0}

    @event.listens_for(vault.storage.engine, "connect")
    def _cap(dbapi_conn, _record):
        dbapi_conn.execute(f"PRAGMA max_page_count={cap['pages']}")

    with vault.storage.engine.connect() as conn:
        used = conn.exec_driver_sql("PRAGMA page_count").scalar()
    cap["pages"] = used + room_pages
    vault.storage.engine.dispose()  # every pooled connection reconnects with the cap
    figures.faults_injected = 1
    load = _Load(vault, [], figures, [])
    acked: list[tuple[str, int, str, str]] = []
    vault.store_secret("full/0", "initial", environment=ENV, max_versions=1000)
    acked.append(("full/0", 1, "initial", "store"))
    # big values until they no longer fit, then tiny ones, so the audit row also meets the full file
    for size in (value_bytes // 2, 4):
        misses = 0
        while misses < 5 and figures.operations < 4000:
            value = secrets.token_hex(size)
            figures.operations += 1
            try:
                acked.append(("full/0", vault.update_secret("full/0", ENV, value=value), value, "update"))
                misses = 0
            except Exception as exc:  # noqa: BLE001 - classified by note_error
                load.note_error(exc, value)
                misses += 1
                for read in (lambda: vault.get_secret("full/0", ENV), lambda: vault.list_secrets()):
                    figures.operations += 1
                    try:
                        read()
                    except Exception as rexc:  # noqa: BLE001 - a read (and its audit row) must fail as clearly
                        load.note_error(rexc, value)
    if figures.failed_while_down == 0:
        figures.problems.append("the capped file never filled up")
    integrity = vault.storage.integrity_check()
    if integrity != "ok":
        figures.problems.append(f"while full: integrity_check = {integrity}")
    try:  # verifying writes its own audit row, so while full it fails closed (an observation, not a fault)
        figures.verify_while_full = "ok" if vault.verify_audit_log().ok else "chain broken"
    except Exception as exc:  # noqa: BLE001
        load.note_error(exc, "")
        figures.verify_while_full = f"{type(exc).__name__}: {exc}"
    cap["pages"] = 1_000_000
    vault.storage.engine.dispose()
    _check_recovered(vault, figures)
    _check_acked(vault, acked, figures)
    after = check_consistency(vault)
    if not after.ok:
        figures.problems.append(f"after room was made: {after.integrity} {after.problems[:3]}")
    vault.storage.dispose()
    return figures
