"""One open transaction and the few ways to run a statement on it.

Every repository (``storage/repos/``) is written the same way: module-level
statements, and functions taking a ``Tx`` that return their results. A
statement wrapped in ``Hot`` runs on the driver cursor of this same
transaction (compiled once per dialect): the hot path (a read and its audit
row) runs five statements, and going to the driver directly saves ~25 us of
SQLAlchemy bookkeeping per statement while the SQL still comes from Core.
Nothing is ever left on a cursor for a caller to read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError


class Hot:
    """A statement built once at module level, run on the driver cursor."""

    __slots__ = ("stmt", "_compiled")

    def __init__(self, stmt):
        self.stmt = stmt
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, conn: Connection, backend: str) -> "_Compiled":
        found = self._compiled.get(backend)
        if found is None:
            found = self._compiled[backend] = _Compiled(self.stmt, conn.dialect)
        return found


class _Compiled:
    __slots__ = ("sql", "order", "columns", "fixed")

    def __init__(self, stmt, dialect):
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.order = compiled.positiontup  # None for named paramstyles (psycopg)
        columns = getattr(stmt, "selected_columns", None)
        if columns is None:
            columns = getattr(stmt, "exported_columns", ())  # an UPDATE ... RETURNING
        self.columns = [c.key for c in columns] or None
        self.fixed = {k: v for k, v in compiled.params.items() if v is not None}  # literals such as id = 1

    def params(self, values: dict) -> Any:
        merged = {**self.fixed, **values} if self.fixed else values
        return merged if self.order is None else tuple(merged[k] for k in self.order)


class Tx:
    """One database transaction (opened by ``Storage.transaction``)."""

    __slots__ = ("conn", "backend", "_cursor", "seal", "state", "change", "changed", "_deferred")

    def __init__(self, conn: Connection, backend: str, seal: Any = None, change: bool = False):
        self.conn = conn
        self.backend = backend
        self._cursor = None
        self.seal = seal  # the row key (crypto.rows.RowSeal) while unlocked: protected rows are checked with it
        self.state: dict[str, Any] | None = None  # the vault_state row as this transaction sees it (repos.state)
        self.change = change  # a durable write: its first state-row write moves vault_state.change_seq
        self.changed = False  # it did (repos.state): a change, signalled to caches (change_signal.py)
        self._deferred: Callable[[], None] | None = None

    def defer(self, write: Callable[[], None] | None) -> None:
        """Run ``write`` before this transaction commits, unless replaced or cancelled (None) first: a row
        changed several times in one transaction (the state row) is then written once."""
        self._deferred = write

    def flush(self) -> None:
        """Run the deferred write now (``Storage.transaction`` calls this before it commits)."""
        write, self._deferred = self._deferred, None
        if write is not None:
            write()

    def _driver(self, hot: Hot, values: dict | None):
        prep = hot.compiled(self.conn, self.backend)
        params = prep.params(values or {})
        dbapi = self.conn.dialect.loaded_dbapi
        try:
            if self._cursor is None:
                self._cursor = self.conn.connection.driver_connection.cursor()
            self._cursor.execute(prep.sql, params)
        except dbapi.Error as exc:  # the same exception classes SQLAlchemy itself would raise
            raise DBAPIError.instance(prep.sql, None, exc, dbapi.Error) from None
        return prep, self._cursor

    def one(self, stmt, values: dict | None = None) -> Mapping[str, Any] | None:
        """The first row as a mapping (column name → value), or None."""
        if isinstance(stmt, Hot):
            prep, cur = self._driver(stmt, values)
            row = cur.fetchone()
            return None if row is None else dict(zip(prep.columns, row))
        row = self.conn.execute(stmt, values).first()
        return None if row is None else row._mapping

    def all(self, stmt, values: dict | None = None) -> list[Mapping[str, Any]]:
        """Every row as a mapping."""
        if isinstance(stmt, Hot):
            prep, cur = self._driver(stmt, values)
            return [dict(zip(prep.columns, r)) for r in cur.fetchall()]
        return [r._mapping for r in self.conn.execute(stmt, values)]

    def tuples(self, stmt, values: dict | None = None) -> list[tuple]:
        """Every row as a plain tuple (the cheapest form, for scans of many rows)."""
        if isinstance(stmt, Hot):
            return self._driver(stmt, values)[1].fetchall()
        return [tuple(r) for r in self.conn.execute(stmt, values)]

    def scalar(self, stmt, values: dict | None = None) -> Any:
        """The first column of the first row, or None."""
        return self.conn.execute(stmt, values).scalar()

    def run(self, stmt, values: dict | list[dict] | None = None) -> int:
        """Execute a change; returns how many rows it touched."""
        if isinstance(stmt, Hot):
            return self._driver(stmt, values)[1].rowcount
        return int(self.conn.execute(stmt, values).rowcount or 0)

    def pipeline(self):
        """A block whose hot statements go to PostgreSQL in one round trip (psycopg's pipeline mode;
        their errors surface at the block's end, and ``run`` returns no row count inside it).
        On SQLite, where a statement is a function call, a no-op."""
        if self.backend != "postgresql":
            return nullcontext()
        return self.conn.connection.driver_connection.pipeline()

    def run_many(self, stmt: Hot, values: list[dict]) -> None:
        """Execute one hot statement for each parameter set (the driver's ``executemany``)."""
        prep = stmt.compiled(self.conn, self.backend)
        dbapi = self.conn.dialect.loaded_dbapi
        try:
            if self._cursor is None:
                self._cursor = self.conn.connection.driver_connection.cursor()
            self._cursor.executemany(prep.sql, [prep.params(v) for v in values])
        except dbapi.Error as exc:
            raise DBAPIError.instance(prep.sql, None, exc, dbapi.Error) from None

    def insert_id(self, stmt) -> int:
        """Execute an INSERT; returns the new row's primary key."""
        return self.conn.execute(stmt).inserted_primary_key[0]
