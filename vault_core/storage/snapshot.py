"""Whole-database snapshots for backup and restore, on a raw connection. Opaque bytes only; no crypto here.

- SQLite: SQLite's online backup API on a raw pooled connection (one step,
  so the copy is one consistent snapshot while writers carry on in WAL mode).
- PostgreSQL: every table read in one REPEATABLE READ, READ ONLY transaction
  and written as JSON lines; restored in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import IO, Any

from sqlalchemy import MetaData, Table, func, insert, select, text
from sqlalchemy.engine import Connection

from ..errors import IntegrityError

ALEMBIC_TABLE = "alembic_version"
_BATCH = 1000


def data_tables(conn: Connection) -> list[Table]:
    """Every table of the database except Alembic's, parents before children (reflected, so new ones count)."""
    md = MetaData()
    md.reflect(bind=conn)
    return [t for t in md.sorted_tables if t.name != ALEMBIC_TABLE]


def schema_revision(conn: Connection) -> str | None:
    try:
        return conn.execute(text(f"SELECT version_num FROM {ALEMBIC_TABLE}")).scalar()
    except Exception:  # no Alembic table: an empty database
        return None


def table_counts(conn: Connection) -> dict[str, int]:
    return {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one()) for t in data_tables(conn)}


def head_of(conn: Connection) -> dict[str, Any]:
    """vault_id and audit head (seq, MAC hex) of the snapshot ``conn`` sees."""
    row = conn.execute(text("SELECT vault_id, audit_seq, audit_mac FROM vault_state WHERE id = 1")).first()
    if row is None:
        raise IntegrityError("the database holds no vault state: nothing to back up")
    return {"vault_id": row[0], "audit": {"seq": int(row[1]), "mac": bytes(row[2]).hex()}}


# -- SQLite -------------------------------------------------------------------------------------
def sqlite_backup(engine, dest: Path) -> None:
    """Copy the live database into ``dest`` (an existing empty 0600 file) as one snapshot."""
    raw = engine.raw_connection()
    try:
        target = sqlite3.connect(dest)
        try:
            raw.driver_connection.backup(target)  # pages=-1: one step, one read transaction
            target.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal beside it
        finally:
            target.close()
    finally:
        raw.close()


def sqlite_file_summary(path: Path) -> tuple[dict[str, Any], dict[str, int], str]:
    """(head as ``head_of`` gives it, rows per table, schema revision) of a SQLite backup file, read-only."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as raw:
        row = raw.execute("SELECT vault_id, audit_seq, audit_mac FROM vault_state WHERE id = 1").fetchone()
        if row is None:
            raise IntegrityError("the database holds no vault state: nothing to back up")
        head = {"vault_id": row[0], "audit": {"seq": int(row[1]), "mac": bytes(row[2]).hex()}}
        names = [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                            "AND name NOT LIKE 'sqlite_%' AND name != ?", (ALEMBIC_TABLE,))]
        counts = {n: raw.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
        revision = raw.execute(f"SELECT version_num FROM {ALEMBIC_TABLE}").fetchone()[0]
    return head, counts, revision


def sqlite_checkpoint(path: Path) -> None:
    """Fold the WAL of the SQLite file at ``path`` into it (before the file is replaced)."""
    with closing(sqlite3.connect(path)) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# -- JSON lines (PostgreSQL) ---------------------------------------------------------------------
def export_jsonl(conn: Connection, out: IO[str], encode: Callable[[Any], Any]) -> dict[str, int]:
    """Write every table as ``{"t": table, "c": columns}`` then ``{"t": table, "r": row}`` lines."""
    counts: dict[str, int] = {}
    for table in data_tables(conn):
        cols = [c.name for c in table.columns]
        out.write(json.dumps({"t": table.name, "c": cols}) + "\n")
        n = 0
        order = list(table.primary_key.columns) or list(table.columns)
        result = conn.execution_options(stream_results=True, yield_per=_BATCH).execute(
            select(table).order_by(*order))
        for row in result:
            out.write(json.dumps({"t": table.name, "r": [encode(v) for v in row]}, separators=(",", ":")) + "\n")
            n += 1
        counts[table.name] = n
    return counts


def read_jsonl(lines: Iterator[str], decode: Callable[[Any], Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(table, row) pairs from an export; malformed input raises ``IntegrityError``."""
    columns: dict[str, list[str]] = {}
    for number, line in enumerate(lines, 1):
        try:
            doc = json.loads(line)
            table = doc["t"]
            if "c" in doc:
                columns[table] = list(doc["c"])
                continue
            cols = columns[table]
            values = doc["r"]
            if len(values) != len(cols):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise IntegrityError(f"backup line {number} is malformed") from None
        yield table, {c: decode(v) for c, v in zip(cols, values)}


def load_rows(conn: Connection, rows: Iterator[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    """Insert exported rows into the (empty) tables of ``conn`` in batches."""
    tables = {t.name: t for t in data_tables(conn)}
    counts: dict[str, int] = {}
    pending: list[dict[str, Any]] = []
    current: str | None = None

    def flush() -> None:
        if pending:
            conn.execute(insert(tables[current]), pending)
            pending.clear()

    for table, row in rows:
        if table not in tables:
            raise IntegrityError(f"the backup has a table this version does not know ({table[:64]})")
        if table != current:
            flush()
            current = table
        known = tables[table].columns
        pending.append({k: v for k, v in row.items() if k in known})
        counts[table] = counts.get(table, 0) + 1
        if len(pending) >= _BATCH:
            flush()
    flush()
    return counts


def copy_all(source: Connection, target: Connection) -> dict[str, int]:
    """Replace every row of ``target`` with those of ``source`` (one transaction on ``target``)."""
    tables = data_tables(target)
    if target.dialect.name == "postgresql":
        target.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables)))
    else:
        for table in reversed(tables):
            target.execute(table.delete())
    by_name = {t.name: t for t in data_tables(source)}

    def rows() -> Iterator[tuple[str, dict[str, Any]]]:
        for table in tables:
            src = by_name.get(table.name)
            if src is not None:
                for row in source.execute(select(src)):
                    yield table.name, dict(row._mapping)

    counts = load_rows(target, rows())
    if target.dialect.name == "postgresql":
        _reset_sequences(target, tables)
    return counts


def _reset_sequences(conn: Connection, tables: list[Table]) -> None:
    """Serial columns continue after the restored ids."""
    for table in tables:
        for col in table.primary_key.columns:
            seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": col.name}).scalar()
            if seq:
                conn.execute(text(f'SELECT setval(:s, COALESCE((SELECT max("{col.name}") FROM "{table.name}"), 0) + 1, '
                                  "false)"), {"s": seq})
