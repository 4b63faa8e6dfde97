"""The audit log (``audit_log``), its chain head (in ``vault_state``, moved through ``state``) and per-day
counters (``audit_daily``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, text

from ..schema import audit_daily, audit_log
from ..tx import Hot, Tx
from . import state as _state

_A, _D = audit_log.c, audit_daily.c
_COLUMNS = tuple(c.key for c in _A)
_INSERT = Hot(insert(audit_log).values({c: bindparam(c) for c in _COLUMNS}))
# One statement whatever the day's count: no extra page read to decide between insert and update.
_DAILY_UPSERT = Hot(text(
    "INSERT INTO audit_daily (day, operation, outcome, count) VALUES (:d_day, :d_op, :d_outcome, :d_n) "
    "ON CONFLICT (day, operation, outcome) DO UPDATE SET count = audit_daily.count + excluded.count"))
_RANGE = Hot(select(audit_log).where(_A.seq > bindparam("after")).order_by(_A.seq).limit(bindparam("lim")))
_FORWARDED_TRUSTED = _COLUMNS.index("forwarded_trusted")


def append_audit(tx: Tx, row: dict[str, Any], day: int) -> None:
    """Insert one chained row, move the head and count it, all in this transaction (one round trip on PostgreSQL)."""
    with tx.pipeline():
        tx.run(_INSERT, {c: row.get(c) for c in _COLUMNS})
        _state.advance_head(tx, row["seq"], row["mac"])  # the head is covered by the state row's MAC
        tx.run(_DAILY_UPSERT, {"d_day": day, "d_op": row["operation"], "d_outcome": row["outcome"], "d_n": 1})


def append_audit_batch(tx: Tx, rows: Sequence[dict[str, Any]], days: Sequence[int]) -> None:
    """Insert chained rows (in chain order), move the head once and count them, all in this transaction.

    The group commit of read-audit rows (``service/group_commit.py``) writes a batch of concurrent
    readers' rows with one insert, one head update and one counter update per (day, operation, outcome).
    """
    counts: dict[tuple, int] = {}
    for row, day in zip(rows, days):
        key = (day, row["operation"], row["outcome"])
        counts[key] = counts.get(key, 0) + 1
    with tx.pipeline():
        tx.run_many(_INSERT, [{c: row.get(c) for c in _COLUMNS} for row in rows])
        _state.advance_head(tx, rows[-1]["seq"], rows[-1]["mac"])
        for (day, op, outcome), n in counts.items():
            tx.run(_DAILY_UPSERT, {"d_day": day, "d_op": op, "d_outcome": outcome, "d_n": n})


def iter_audit(tx: Tx, batch: int = 5000) -> Iterator[dict[str, Any]]:
    """Every row in chain order as plain dicts, read in batches (verification, backups).

    Driver tuples, not RowMappings: verifying a million rows is dominated by
    per-row overhead, and this path is 3x cheaper.
    """
    after = 0
    while True:
        rows = tx.tuples(_RANGE, {"after": after, "lim": batch})
        for r in rows:
            row = dict(zip(_COLUMNS, r))
            row["forwarded_trusted"] = bool(r[_FORWARDED_TRUSTED])  # SQLite hands back 0/1
            yield row
        if len(rows) < batch:
            return
        after = rows[-1][0]


_RAW = Hot(select(*[_A[c] for c in _COLUMNS]).where(_A.seq > bindparam("after")).order_by(_A.seq)
           .limit(bindparam("lim")))


def iter_audit_raw(tx: Tx, batch: int = 20_000) -> Iterator[list[tuple]]:
    """Every row in chain order as driver tuples (the table's column order), a batch at a time: verification."""
    after = 0
    while True:
        rows = tx.tuples(_RAW, {"after": after, "lim": batch})
        if rows:
            yield rows
        if len(rows) < batch:
            return
        after = rows[-1][0]


FILTERS = ("secret_id", "principal", "operation", "environment", "outcome", "secret_name", "value_hash")


def query_audit(tx: Tx, *, filters: Mapping[str, Any], before: tuple[int, int] | None,
                limit: int) -> list[Mapping[str, Any]]:
    """Newest first by (ts, seq), keyset-paginated: the indexes end in (ts, seq).

    ``filters``: a column of ``FILTERS`` → the value it must equal, and
    ``since``/``until`` → the range of ``ts`` (microseconds; since inclusive).
    """
    stmt = _filtered(select(audit_log).order_by(_A.ts.desc(), _A.seq.desc()).limit(limit), filters)
    if before is not None:
        stmt = stmt.where(or_(_A.ts < before[0], and_(_A.ts == before[0], _A.seq < before[1])))
    return tx.all(stmt)


def query_audit_oldest_first(tx: Tx, *, filters: Mapping[str, Any], after: int, limit: int) -> list[Mapping[str, Any]]:
    """Oldest first, in chain order (``seq``), keyset-paginated after row ``after``; filters as ``query_audit``."""
    return tx.all(_filtered(select(audit_log).where(_A.seq > after).order_by(_A.seq).limit(limit), filters))


def rows_after(tx: Tx, after: int, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` rows after row ``after``, in chain order (audit devices read their stream here)."""
    rows = [dict(zip(_COLUMNS, r)) for r in tx.tuples(_RANGE, {"after": after, "lim": limit})]
    for row in rows:
        row["forwarded_trusted"] = bool(row["forwarded_trusted"])  # SQLite hands back 0/1
    return rows


def _filtered(stmt, filters: Mapping[str, Any]):
    for key, value in filters.items():
        if key == "since":
            stmt = stmt.where(_A.ts >= value)
        elif key == "until":
            stmt = stmt.where(_A.ts < value)
        elif key in FILTERS:
            stmt = stmt.where(_A[key] == value)
        else:
            raise ValueError(f"no audit filter {key!r}")
    return stmt


def audit_daily_counts(tx: Tx, since_day: int) -> list[Mapping[str, Any]]:
    return tx.all(select(audit_daily).where(_D.day >= since_day).order_by(_D.day))


def rotation_events(tx: Tx, operations: Sequence[str], secret_id: str | None,
                    limit: int) -> list[Mapping[str, Any]]:
    """Rows of the given operations (of one secret), newest first: the rotation history."""
    stmt = select(_A.seq, _A.ts, _A.principal, _A.operation, _A.environment, _A.secret_id, _A.secret_name,
                  _A.version, _A.outcome, _A.reason).where(_A.operation.in_(list(operations)))
    if secret_id is not None:
        stmt = stmt.where(_A.secret_id == secret_id)
    return tx.all(stmt.order_by(_A.ts.desc(), _A.seq.desc()).limit(limit))


def count_since(tx: Tx, principal: str, operation: str, since: int) -> int:
    """Rows of ``operation`` by ``principal`` at or after ``since`` (on the (principal, ts) index)."""
    return int(tx.scalar(select(func.count()).select_from(audit_log).where(
        and_(_A.principal == principal, _A.ts >= since, _A.operation == operation))))


_LINK = Hot(select(_A.mac).where(_A.seq == bindparam("seq")))
_CHANGED_NAMES = Hot(select(_A.secret_name).distinct().where(
    _A.seq > bindparam("after"), _A.seq <= bindparam("upto"),
    or_(and_(_A.environment == bindparam("env"), _A.secret_name.is_not(None),
             # reads change no secret, and are the bulk of a busy log's tail
             _A.operation != "read", _A.operation != "reveal"),
        # a restore rolls versions back with no row naming them: it comes up as a None name
        _A.operation == "restore")).limit(bindparam("lim")))


def changed_secret_names(tx: Tx, environment: str, after: int, after_mac: bytes, upto: int, *,
                         tail_max: int = 20_000, names_max: int = 500) -> list[str] | None:
    """Names of ``environment`` that audit rows ``after`` < seq <= ``upto`` other than reads name: what a
    listing taken at row ``after`` must look at again. None (list everything) when row ``after`` no longer
    carries ``after_mac`` (a rewritten chain), the tail holds a ``restore``, or the tail or the names are too many for a
    delta to be cheaper. A hint for caches of metadata: the values they serve come from audited reads."""
    if after > upto or upto - after > tail_max:
        return None
    if after:
        link = tx.tuples(_LINK, {"seq": after})
        if not link or bytes(link[0][0]) != after_mac:
            return None
    names = [n for (n,) in tx.tuples(_CHANGED_NAMES, {"after": after, "upto": upto, "env": environment,
                                                     "lim": names_max + 1})]
    return None if len(names) > names_max or None in names else names
