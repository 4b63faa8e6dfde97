"""WAL checkpoints in a background thread, so that no commit pays for one (SQLite).

SQLite's default checkpoints inside the commit that pushes the WAL past 1,000 pages: that
commit copies the pages into the database file and fsyncs it, which is where a commit's p99
came from (6.9 ms against a 0.2 ms median). Here the engine's connections checkpoint inline
only as a safety net (``SAFETY_PAGES``, if this thread is not keeping up or is gone), and a
thread with a connection of its own runs ``PRAGMA wal_checkpoint(PASSIVE)`` (never blocks a
reader or a writer) every ``interval`` seconds in which something was committed.

It never opens the ``-shm``/``-wal`` files itself: closing any descriptor of a file drops every
POSIX lock this process holds on it, SQLite's WAL locks included (a first version that read the
WAL index with ``open()`` let two processes' writers in at once: ``test_durability``'s
racing-CAS test caught it).

Durability is unchanged: a commit is durable when its WAL frames are synced
(``synchronous=FULL``), whoever copies them into the database file later.

Threads do not survive ``fork``: a child's checkpointers start a new thread and connection
(``restart_after_fork``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from pathlib import Path

INTERVAL = 0.1  # seconds between looks at the database (a checkpoint only if something was committed)
SAFETY_PAGES = 20_000  # the engine's connections checkpoint inline only past this (about 80 MB)
_POLL_SECONDS = 0.05


class Checkpointer:
    """The background checkpoint thread of one SQLite database file."""

    def __init__(self, path: Path, interval: float = INTERVAL):
        self.path = Path(path)
        self.interval = interval
        self.checkpoints = 0  # how many checkpoints this thread ran (tests, benchmarks)
        self.last: tuple[int, int, int] | None = None  # its newest (busy, WAL frames, frames copied)
        self.pid = 0
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()
        _instances.add(self)
        self._start()

    def _start(self) -> None:
        self.pid = os.getpid()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="vault-wal-checkpoint", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        stop = self._stop
        conn, seen = None, None
        try:
            while not stop.wait(self.interval):
                try:
                    if conn is None:
                        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                        conn.execute("PRAGMA busy_timeout=1000")
                        seen = None
                    version = conn.execute("PRAGMA data_version").fetchone()[0]
                    if version == seen:  # nobody committed since the last checkpoint
                        continue
                    result = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if result[1] < 0:  # opened before the file was in WAL mode: open again next time
                        conn.close()
                        conn = None
                        continue
                    seen, self.last = version, tuple(result)
                    self.checkpoints += 1
                except sqlite3.Error:  # e.g. the file went away; try again later with a new connection
                    if conn is not None:
                        conn.close()
                    conn = None
                    stop.wait(1.0)
        finally:
            if conn is not None:
                conn.close()

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive() and self.pid == os.getpid()

    def close(self) -> None:
        self._stop.set()
        if self.thread is not None and self.pid == os.getpid() and self.thread is not threading.current_thread():
            self.thread.join(timeout=5)

    def restart_after_fork(self) -> None:
        """In a forked child: the parent's thread is gone; start this process's own."""
        if not self._stop.is_set():
            self._start()


_instances: "weakref.WeakSet[Checkpointer]" = weakref.WeakSet()


def _after_fork() -> None:
    for cp in list(_instances):
        cp.restart_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
