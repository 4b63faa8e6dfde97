"""Engines for SQLite (default, WAL) and PostgreSQL, migrations, and transactions.

Durability: a transaction that changes secrets, rules, users or keys commits
with ``synchronous=FULL`` on SQLite (it survives power loss). A transaction
that only records a read in the audit log commits with ``NORMAL``: it
survives a crash of the process (kill -9); a power cut may lose the newest
read-audit rows, never a secret change (WAL commits are ordered, so a later
FULL commit makes earlier NORMAL ones durable too).
"""

from __future__ import annotations

import fcntl
import os
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from ..errors import StorageError
from .checkpoint import SAFETY_PAGES, Checkpointer
from .change_signal import CHANNEL, close_signal
from .tx import Tx

MIGRATIONS = Path(__file__).parent / "migrations"
_BUSY_TIMEOUT_MS = 15_000


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql", "postgres"))


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path)}"


def _create_private_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does (its -wal/-shm copy the mode)."""
    if not path.exists():
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, pool_size=8, max_overflow=24, pool_timeout=60)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA wal_autocheckpoint={SAFETY_PAGES}")  # checkpoints: checkpoint.py's thread
        cur.close()
        _record.info["synchronous"] = "FULL"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection):
        opts = conn.get_execution_options()
        driver = conn.connection.driver_connection  # straight to sqlite3: ~40 us less per transaction
        if not opts.get("vault_write", True):  # a read commits nothing: its synchronous level is moot
            driver.execute("BEGIN")
            return
        wanted = "FULL" if opts.get("vault_durable", True) else "NORMAL"
        info = conn.connection._connection_record.info  # type: ignore[union-attr]
        if info.get("synchronous") != wanted:
            driver.execute(f"PRAGMA synchronous={wanted}")
            info["synchronous"] = wanted
        driver.execute("BEGIN IMMEDIATE")

    return engine


def _is_transient(exc: BaseException) -> bool:
    msg = str(getattr(exc, "orig", exc)).lower()
    return any(s in msg for s in ("database is locked", "database is busy", "deadlock detected",
                                  "could not serialize", "serialization failure"))


class Storage:
    """One database: engine, schema migrations and transactions. No crypto here."""

    def __init__(self, url: str):
        self.url = url
        self.backend = "postgresql" if is_postgres_url(url) else "sqlite"
        self.path: Path | None = None
        self.checkpointer: Checkpointer | None = None
        self.changes = 0  # changes committed through this Storage (change_signal.py)
        self._nonce = os.urandom(6).hex()
        self.seal = None  # crypto.rows.RowSeal while the vault is unlocked (set by the vault)
        self.upgraded_from: str | None = None  # the schema revision this process migrated from, if it did
        if self.backend == "sqlite":
            self.path = Path(url.split("///", 1)[1]) if "///" in url else None
            if self.path is not None:
                _create_private_file(self.path)
            self.engine = _sqlite_engine(url)
            self.checkpointer = Checkpointer(self.path) if self.path is not None else None
        else:
            self.engine = create_engine(url, pool_size=8, max_overflow=24, pool_pre_ping=True)
        _storages.add(self)

    # -- schema -------------------------------------------------------------
    def migrate(self) -> str:
        """Bring the schema to the newest Alembic revision; returns it."""
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        head = ScriptDirectory.from_config(cfg).get_current_head()
        with self._migration_lock():
            with self.engine.connect() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
                if current == head:
                    return head
            with self.engine.connect() as conn:
                conn = conn.execution_options(vault_write=True, vault_durable=True)
                with conn.begin():
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
            self.upgraded_from = current or "new"
        return head

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """Only one process migrates at a time (file lock on SQLite, advisory lock on PostgreSQL)."""
        if self.backend == "sqlite" and self.path is not None:
            lock_path = self.path.with_name(self.path.name + ".lock")
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        elif self.backend == "postgresql":
            with self.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(774411)"))
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(774411)"))
                    conn.commit()
        else:
            yield

    # -- transactions -------------------------------------------------------
    def sender(self) -> str:
        """The payload of this process's change notifications: its own are counted at commit
        (``changes``), so its listener skips their echo. A forked child is another sender. Raises nothing."""
        return f"{os.getpid()}.{self._nonce}"

    @contextmanager
    def transaction(self, *, write: bool = True, durable: bool = True, attempts: int = 8) -> Iterator[Tx]:
        """A transaction as a repository. Write transactions take the write lock at BEGIN.

        A durable write transaction that writes the state row (every audited change, every rules
        change) is a change: it moves ``vault_state.change_seq`` and, on PostgreSQL, sends
        ``NOTIFY vault_change`` (``change_signal.py``) in the same transaction. Reads never do.

        Only BEGIN is retried on lock contention; once the lock is held the
        block runs exactly once, so nothing is applied twice.
        """
        delay = 0.005
        for attempt in range(attempts):
            conn = None
            try:
                conn = self.engine.connect().execution_options(vault_write=write, vault_durable=durable)
                trans = conn.begin()
                break
            except (OperationalError, DBAPIError) as exc:
                if conn is not None:
                    conn.close()
                if attempt + 1 == attempts or not _is_transient(exc):
                    raise self.error(exc) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        try:
            tx = Tx(conn, self.backend, self.seal, change=write and durable)
            yield tx
            tx.flush()
            if tx.changed and self.backend == "postgresql":  # delivered at this commit, dropped at a rollback
                conn.exec_driver_sql(f"NOTIFY {CHANNEL}, '{self.sender()}'")
            trans.commit()
            if tx.changed:
                self.changes += 1
        except BaseException as exc:
            if trans.is_active:
                try:
                    trans.rollback()
                except DBAPIError:
                    pass  # the connection is gone; the server discards the transaction
            if isinstance(exc, (OperationalError, DBAPIError)) and not isinstance(exc, IntegrityError):
                raise self.error(exc) from None
            raise
        finally:
            conn.close()

    def error(self, exc: BaseException) -> StorageError:
        """A StorageError naming the backend and the driver's reason (never the URL)."""
        return StorageError(f"the {self.backend} database failed: {_reason(exc)}")

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` (``ok`` when sound); PostgreSQL: a ping."""
        with self.engine.connect() as conn:
            if self.backend == "sqlite":
                return ", ".join(r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check"))
            conn.execute(text("SELECT 1"))
            return "ok"

    def dispose(self) -> None:
        close_signal(self)
        if self.checkpointer is not None:
            self.checkpointer.close()
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Storage(backend={self.backend!r})"


_storages: "weakref.WeakSet[Storage]" = weakref.WeakSet()


def _after_fork() -> None:
    """A forked child never uses its parent's pooled connections (SQLite's and libpq's rule)."""
    for storage in list(_storages):
        storage.engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork)


def _reason(exc: BaseException) -> str:
    """A short reason without connection strings (they may hold a password)."""
    orig = getattr(exc, "orig", exc)
    return type(orig).__name__ + (": " + str(orig).splitlines()[0][:200] if str(orig) else "")
