"""A cheap "did anything change?" stamp for caches above the vault, on both backends.

An unchanged stamp proves that no secret, version or rule changed since it was taken; a cache
takes it *before* reading, so a change that lands during the read changes the next stamp.

* SQLite: ``vault_state.change_seq``, moved in every change's transaction (``repos.state``) and
  never by a read, with the (MACed) ``rules_version`` beside it. A private connection reads them
  only when ``PRAGMA data_version`` shows that some connection, in this process or another,
  committed since the last look: a read's audit commit moves data_version but not the stamp.
* PostgreSQL: every change's transaction (the ones that move ``change_seq``) sends ``NOTIFY vault_change`` (``Storage.transaction``,
  delivered at its commit, dropped at a rollback); a thread of this process ``LISTEN``s on a
  connection of its own and counts the notifications. Changes made through this process's own
  ``Storage`` count at once (``Storage.changes``), another process's when its notification
  arrives; the echo of an own change (its payload is ``Storage.sender()``) is skipped, so one
  change moves the stamp once. As a fallback against a lost notification, the stamp also moves every ``interval``
  seconds; while the listener is not connected (starting, or the server went away) the stamp is
  None and callers check versions with a query instead.

A signal belongs to the process that made it: after a fork the child makes its own.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import Any

CHANNEL = "vault_change"
FALLBACK_SECONDS = 2.0  # the PostgreSQL stamp moves at least this often (a lost notification's bound)
_CONNECT_WAIT = 5.0  # how long the first stamp waits for LISTEN to be in place


class SqliteChangeSignal:
    """``stamp()`` returns (change_seq, rules_version) of the state row, or None if it cannot be read."""

    def __init__(self, path: str | Path):
        self.pid = os.getpid()
        self._conn = sqlite3.connect(Path(path).absolute().as_uri() + "?mode=ro", uri=True,
                                     check_same_thread=False, isolation_level=None)
        self._cursor = self._conn.cursor()
        self._lock = threading.Lock()
        self._version: int | None = None  # data_version at the last counter read
        self._stamp: tuple[int, int] | None = None
        self.counter_reads = 0  # how often data_version moved and the counter was read

    def stamp(self) -> tuple[int, int] | None:
        with self._lock:
            try:
                version = self._cursor.execute("PRAGMA data_version").fetchone()[0]
                if version != self._version or self._stamp is None:
                    self.counter_reads += 1
                    row = self._cursor.execute(
                        "SELECT change_seq, rules_version FROM vault_state WHERE id = 1").fetchone()
                    self._version, self._stamp = version, None if row is None else (row[0], row[1])
                return self._stamp
            except sqlite3.Error:  # not migrated yet, or the file went away: callers query versions
                self._version = self._stamp = None
                return None

    def close(self) -> None:
        if os.getpid() == self.pid:  # a forked child must not touch its parent's connection
            self._conn.close()


class PgChangeSignal:
    """``stamp()`` is (own changes, notifications received, fallback tick), or None while not listening."""

    def __init__(self, storage: Any, interval: float = FALLBACK_SECONDS):
        self.pid = os.getpid()
        self.interval = interval
        self.notifications = 0  # other senders' notifications (and reconnects)
        self.echoes = 0  # notifications of this process's own changes, skipped
        self.last_notified: float | None = None  # time.time() of the newest notification
        self._storage = weakref.ref(storage)
        self._conninfo = storage.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._listening = threading.Event()
        self._stop = threading.Event()
        self._conn: Any = None
        self._thread = threading.Thread(target=self._listen, name="vault-change-listener", daemon=True)
        self._thread.start()
        self._listening.wait(_CONNECT_WAIT)

    def stamp(self) -> tuple[int, int, int] | None:
        storage = self._storage()
        if storage is None or not self._listening.is_set():
            return None
        return storage.changes, self.notifications, int(time.monotonic() / self.interval)

    def _listen(self) -> None:
        import psycopg

        delay = 0.05
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    self._conn = conn
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.notifications += 1  # changes may have been missed while not listening
                    self._listening.set()
                    delay = 0.05
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0, stop_after=64):
                            storage = self._storage()
                            if storage is not None and note.payload == storage.sender():
                                self.echoes += 1  # counted at its commit already
                                continue
                            self.notifications += 1
                            self.last_notified = time.time()
            except Exception:  # the server went away (or is not up yet): query until listening again
                pass
            finally:
                self._listening.clear()
                self._conn = None
            self._stop.wait(delay)
            delay = min(delay * 2, 2.0)

    def close(self) -> None:
        """Stop listening: the thread closes its connection within a second (not waited for)."""
        self._stop.set()


_signals: "weakref.WeakKeyDictionary[Any, SqliteChangeSignal | PgChangeSignal | None]" = \
    weakref.WeakKeyDictionary()
_lock = threading.Lock()


def change_signal(storage: Any) -> SqliteChangeSignal | PgChangeSignal | None:
    """The shared signal of a ``Storage`` in this process (None for in-memory databases)."""
    sig = _signals.get(storage, False)
    if sig is not False and (sig is None or sig.pid == os.getpid()):
        return sig
    with _lock:
        sig = _signals.get(storage, False)
        if sig is False or (sig is not None and sig.pid != os.getpid()):
            sig = None
            try:
                if storage.backend == "postgresql":
                    sig = PgChangeSignal(storage)
                elif storage.path is not None:
                    sig = SqliteChangeSignal(storage.path)
            except (sqlite3.Error, OSError):
                sig = None
            if sig is not None:
                weakref.finalize(storage, sig.close)
            _signals[storage] = sig
        return sig


def close_signal(storage: Any) -> None:
    """Stop and forget the signal of ``storage`` (``Storage.dispose``); the next use makes a new one."""
    with _lock:
        sig = _signals.pop(storage, None)
    if sig is not None:
        sig.close()
