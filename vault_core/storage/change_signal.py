"""A cheap "did anything change?" stamp for caches above the vault (SQLite only).

``PRAGMA data_version`` on a private connection changes whenever any other
connection, in this process or another, commits to the database file; an
unchanged stamp therefore proves that no secret, version or rule changed.
PostgreSQL has no equivalent this cheap: callers get ``None`` and check
versions with a query instead.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any


class SqliteChangeSignal:
    """``stamp()`` returns SQLite's data_version (or None if it cannot be read)."""

    def __init__(self, path: str | Path):
        self._conn = sqlite3.connect(Path(path).absolute().as_uri() + "?mode=ro", uri=True,
                                     check_same_thread=False, isolation_level=None)
        self._cursor = self._conn.cursor()
        self._lock = threading.Lock()

    def stamp(self) -> int | None:
        with self._lock:
            try:
                return self._cursor.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error:
                return None

    def close(self) -> None:
        self._conn.close()


_signals: "weakref.WeakKeyDictionary[Any, SqliteChangeSignal | None]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def change_signal(storage: Any) -> SqliteChangeSignal | None:
    """The shared signal of a ``Storage`` (None on PostgreSQL or in-memory databases)."""
    try:
        return _signals[storage]
    except KeyError:
        pass
    with _lock:
        if storage not in _signals:
            sig = None
            if storage.backend == "sqlite" and storage.path is not None:
                try:
                    sig = SqliteChangeSignal(storage.path)
                    weakref.finalize(storage, sig.close)
                except sqlite3.Error:
                    sig = None
            _signals[storage] = sig
        return _signals[storage]
