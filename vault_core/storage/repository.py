"""Repository: the queries the vault runs, on one open transaction.

Everything here moves opaque bytes and plain metadata; no key or plaintext
ever reaches this module. The same methods run on SQLite and PostgreSQL
(tests/test_storage_contract.py runs one suite against both).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import DBAPIError

from .schema import (
    access_rules,
    audit_daily,
    audit_log,
    principals,
    secret_counts,
    secret_versions,
    secrets,
    vault_state,
    wrapped_keys,
)

_S, _V = secrets.c, secret_versions.c

# Hot-path statements are built once with bind parameters: SQLAlchemy then
# reuses their cache key and compiled form, which halves the cost of a read.
_READ_CURRENT = (
    select(_S.id, _S.name, _S.environment, _S.salt, _S.current_version, _S.deleted_at, _S.secret_type,
           _V.ciphertext)
    .select_from(secrets.join(secret_versions, and_(_V.secret_id == _S.id, _V.version == _S.current_version)))
    .where(and_(_S.environment == bindparam("env"), _S.name == bindparam("name")))
)
_STATE = select(vault_state).where(vault_state.c.id == 1)
_STATE_LOCKED = _STATE.with_for_update()
_AUDIT_COLUMNS = tuple(c.key for c in audit_log.c)
_AUDIT_INSERT = insert(audit_log).values({c: bindparam(c) for c in _AUDIT_COLUMNS})
_HEAD_UPDATE = (update(vault_state).where(vault_state.c.id == 1)
                .values(audit_seq=bindparam("h_seq"), audit_mac=bindparam("h_mac")))
_DAILY_BUMP = (update(audit_daily)
               .where(and_(audit_daily.c.day == bindparam("d_day"), audit_daily.c.operation == bindparam("d_op"),
                           audit_daily.c.outcome == bindparam("d_outcome")))
               .values(count=audit_daily.c.count + 1))
_SECRET_COLUMNS = tuple(c.key for c in secrets.c)
_SECRET_DEFAULTS = {c.key: c.default.arg for c in secrets.c
                    if c.default is not None and not callable(c.default.arg)}
_FIND_SECRET = select(secrets).where(and_(_S.environment == bindparam("env"), _S.name == bindparam("name")))
_SECRET_BY_ID = select(secrets).where(_S.id == bindparam("sid"))
_INSERT_SECRET = insert(secrets).values({c: bindparam(c) for c in _SECRET_COLUMNS})
_VERSION_COLUMNS = tuple(c.key for c in secret_versions.c)
_INSERT_VERSION = insert(secret_versions).values({c: bindparam(c) for c in _VERSION_COLUMNS})
_SET_STATE = (update(secret_versions).where(and_(_V.secret_id == bindparam("sid"), _V.version == bindparam("ver")))
              .values(state=bindparam("state")))
# "keep" holds one or two versions (current, and the pending one a staged rotation promotes)
_DEMOTE = (update(secret_versions)
           .where(and_(_V.secret_id == bindparam("sid"), _V.version != bindparam("k1"), _V.version != bindparam("k2"),
                       or_(_V.state == "current", _V.state == "previous")))
           .values(state="old"))
_PRUNE = delete(secret_versions).where(and_(_V.secret_id == bindparam("sid"), _V.version < bindparam("below"),
                                            _V.version != bindparam("k1"), _V.version != bindparam("k2")))
_COUNT_ENCRYPTIONS = (update(wrapped_keys)
                      .where(and_(wrapped_keys.c.purpose == "data", wrapped_keys.c.term == bindparam("term")))
                      .values(encryptions=wrapped_keys.c.encryptions + bindparam("n")))
_UPDATES: dict[tuple, Any] = {}


def _secret_update(keys: tuple[str, ...], cas: bool):
    """An UPDATE of exactly these columns (optionally guarded by the current version), built once."""
    stmt = _UPDATES.get((keys, cas))
    if stmt is None:
        where = _S.id == bindparam("sid")
        if cas:
            where = and_(where, _S.current_version == bindparam("expected"))
        stmt = _UPDATES[(keys, cas)] = update(secrets).where(where).values({k: bindparam("v_" + k) for k in keys})
    return stmt


def _keep(keep: Sequence[int]) -> dict[str, int]:
    if not 1 <= len(keep) <= 2:
        raise ValueError("keep one or two versions")
    return {"k1": keep[0], "k2": keep[-1]}


_AUDIT_RANGE = (select(audit_log).where(audit_log.c.seq > bindparam("after")).order_by(audit_log.c.seq)
                .limit(bindparam("lim")))
_COUNT_BUMP = (update(secret_counts)
               .where(and_(secret_counts.c.environment == bindparam("env"),
                           secret_counts.c.secret_type == bindparam("stype")))
               .values(n=secret_counts.c.n + bindparam("delta")))
_COUNT_INSERT = insert(secret_counts).values(environment=bindparam("env"), secret_type=bindparam("stype"),
                                             n=bindparam("delta"))
_DAILY_INSERT = insert(audit_daily).values(day=bindparam("d_day"), operation=bindparam("d_op"),
                                           outcome=bindparam("d_outcome"), count=1)


class _Prepared:
    """A Core statement compiled once for one dialect and run on the DBAPI cursor.

    The hot path (a read and its audit row) runs five statements; going to the
    driver directly saves ~25 us of SQLAlchemy bookkeeping per statement while
    the SQL itself still comes from the Core definitions above.
    """

    __slots__ = ("sql", "order", "columns", "fixed")

    def __init__(self, stmt, dialect):
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.order = compiled.positiontup  # None for named paramstyles (psycopg)
        self.columns = [c.key for c in stmt.selected_columns] if hasattr(stmt, "selected_columns") else None
        self.fixed = {k: v for k, v in compiled.params.items() if v is not None}  # literals such as id = 1

    def params(self, values: dict) -> Any:
        merged = {**self.fixed, **values} if self.fixed else values
        return merged if self.order is None else tuple(merged[k] for k in self.order)


_PREPARED: dict[tuple[int, str], _Prepared] = {}


class Tx:
    """One database transaction, with the vault's queries as methods."""

    __slots__ = ("conn", "backend", "_cursor")

    def __init__(self, conn: Connection, backend: str):
        self.conn = conn
        self.backend = backend
        self._cursor = None

    def _fast(self, stmt, values: dict | None = None):
        """Execute a hot-path statement on the driver cursor of this same transaction."""
        key = (id(stmt), self.backend)
        prep = _PREPARED.get(key)
        if prep is None:
            prep = _PREPARED[key] = _Prepared(stmt, self.conn.dialect)
        params = prep.params(values or {})
        dbapi = self.conn.dialect.loaded_dbapi
        try:
            if self._cursor is None:
                self._cursor = self.conn.connection.driver_connection.cursor()
            self._cursor.execute(prep.sql, params)
        except dbapi.Error as exc:  # the same exception classes SQLAlchemy itself would raise
            raise DBAPIError.instance(prep.sql, None, exc, dbapi.Error) from None
        return prep

    def _fast_one(self, stmt, values: dict | None = None) -> dict | None:
        prep = self._fast(stmt, values)
        row = self._cursor.fetchone()
        return None if row is None else dict(zip(prep.columns, row))

    def _one(self, stmt, params: dict | None = None) -> RowMapping | None:
        row = self.conn.execute(stmt, params).first()
        return row._mapping if row is not None else None

    def _all(self, stmt) -> list[RowMapping]:
        return [r._mapping for r in self.conn.execute(stmt)]

    # -- vault state ----------------------------------------------------------
    def get_state(self, *, lock: bool = False) -> RowMapping | None:
        """The single state row; ``lock`` serialises writers on PostgreSQL (SQLite's BEGIN IMMEDIATE already does)."""
        return self._fast_one(_STATE_LOCKED if lock and self.backend == "postgresql" else _STATE)

    def init_state(self, **values: Any) -> None:
        self.conn.execute(insert(vault_state).values(id=1, **values))

    def bump_rules_version(self) -> int:
        self.conn.execute(update(vault_state).where(vault_state.c.id == 1)
                          .values(rules_version=vault_state.c.rules_version + 1))
        return self.conn.execute(select(vault_state.c.rules_version)).scalar_one()

    def rules_version(self) -> int:
        return self.conn.execute(select(vault_state.c.rules_version).where(vault_state.c.id == 1)).scalar_one()

    # -- wrapped keys ---------------------------------------------------------
    def wrapped_keys(self, purpose: str | None = None) -> list[RowMapping]:
        stmt = select(wrapped_keys).order_by(wrapped_keys.c.purpose, wrapped_keys.c.term)
        if purpose is not None:
            stmt = stmt.where(wrapped_keys.c.purpose == purpose)
        return self._all(stmt)

    def put_wrapped_key(self, purpose: str, term: int, wrapped: bytes, created_at: int) -> None:
        self.conn.execute(insert(wrapped_keys).values(purpose=purpose, term=term, wrapped=wrapped,
                                                      created_at=created_at, encryptions=0))

    def rewrap_key(self, purpose: str, term: int, wrapped: bytes) -> None:
        self.conn.execute(update(wrapped_keys).where(and_(wrapped_keys.c.purpose == purpose,
                                                          wrapped_keys.c.term == term)).values(wrapped=wrapped))

    def count_encryptions(self, term: int, n: int = 1) -> None:
        self._fast(_COUNT_ENCRYPTIONS, {"term": term, "n": n})

    # -- secrets ----------------------------------------------------------------
    def read_current(self, environment: str, name: str) -> RowMapping | None:
        """The hot path of a read: metadata and current ciphertext in one indexed query."""
        return self._fast_one(_READ_CURRENT, {"env": environment, "name": name})

    def find_secret(self, environment: str, name: str) -> dict | None:
        return self._fast_one(_FIND_SECRET, {"env": environment, "name": name})

    def secret_by_id(self, secret_id: str) -> dict | None:
        return self._fast_one(_SECRET_BY_ID, {"sid": secret_id})

    def insert_secret(self, **values: Any) -> None:
        unknown = set(values) - set(_SECRET_COLUMNS)
        if unknown:
            raise ValueError(f"unknown secret columns: {sorted(unknown)}")
        self._fast(_INSERT_SECRET, {c: values.get(c, _SECRET_DEFAULTS.get(c)) for c in _SECRET_COLUMNS})

    def _update(self, secret_id: str, expected: int | None, values: dict[str, Any]) -> int:
        keys = tuple(sorted(values))
        params = {"v_" + k: values[k] for k in keys}
        params["sid"] = secret_id
        if expected is not None:
            params["expected"] = expected
        self._fast(_secret_update(keys, expected is not None), params)
        return self._cursor.rowcount

    def update_secret(self, secret_id: str, **values: Any) -> None:
        self._update(secret_id, None, values)

    def cas_update_secret(self, secret_id: str, expected_version: int, **values: Any) -> bool:
        """Update only if the current version is still ``expected_version``."""
        return self._update(secret_id, expected_version, values) == 1

    def purge_secret(self, secret_id: str) -> None:
        self.conn.execute(delete(secret_versions).where(_V.secret_id == secret_id))
        self.conn.execute(delete(secrets).where(_S.id == secret_id))

    def insert_version(self, **values: Any) -> None:
        self._fast(_INSERT_VERSION, {c: values[c] for c in _VERSION_COLUMNS})

    def get_version(self, secret_id: str, version: int) -> RowMapping | None:
        return self._one(select(secret_versions).where(and_(_V.secret_id == secret_id, _V.version == version)))

    def set_version_state(self, secret_id: str, version: int, state: str) -> None:
        self._fast(_SET_STATE, {"sid": secret_id, "ver": version, "state": state})

    def demote_versions(self, secret_id: str, keep: Sequence[int]) -> None:
        """Mark every current/previous version but ``keep`` (one or two) as old."""
        self._fast(_DEMOTE, {"sid": secret_id, **_keep(keep)})

    def prune_versions(self, secret_id: str, below: int, keep: Sequence[int] = ()) -> None:
        """Destroy versions older than ``below`` except those in ``keep`` (one or two)."""
        self._fast(_PRUNE, {"sid": secret_id, "below": below, **_keep(keep or [0])})

    def list_versions(self, secret_id: str) -> list[RowMapping]:
        return self._all(select(_V.version, _V.state, _V.created_at, _V.created_by, _V.key_term)
                         .where(_V.secret_id == secret_id).order_by(_V.version.desc()))

    def list_secrets(
        self,
        *,
        environments: Iterable[str] | None = None,
        secret_type: str | None = None,
        prefix: str | None = None,
        contains: str | None = None,
        tag: str | None = None,
        include_deleted: bool = False,
        only_deleted: bool = False,
        after: tuple[str, str] | None = None,
        limit: int = 100,
    ) -> list[RowMapping]:
        """Secrets ordered by (environment, name), keyset-paginated after ``after``."""
        stmt = select(secrets).order_by(_S.environment, _S.name).limit(limit)
        if environments is not None:
            stmt = stmt.where(_S.environment.in_(list(environments)))
        if secret_type is not None:
            stmt = stmt.where(_S.secret_type == secret_type)
        if prefix:
            stmt = stmt.where(and_(_S.name >= prefix, _S.name < prefix + "\U0010ffff"))
        if contains:
            stmt = stmt.where(_S.name.contains(contains, autoescape=True))
        if tag:
            stmt = stmt.where(_S.tags.contains(json.dumps(tag), autoescape=True))
        if only_deleted:
            stmt = stmt.where(_S.deleted_at.is_not(None))
        elif not include_deleted:
            stmt = stmt.where(_S.deleted_at.is_(None))
        if after is not None:
            env, name = after
            if environments is not None and len(set(environments)) == 1:
                # one environment: "name > ?" keeps the search on the (environment, name) index
                only = next(iter(environments))
                stmt = stmt.where(_S.name > name) if only == env else stmt.where(_S.environment > env)
            else:
                stmt = stmt.where(or_(_S.environment > env, and_(_S.environment == env, _S.name > name)))
        return self._all(stmt)

    def count_secret(self, environment: str, secret_type: str, delta: int) -> None:
        """Move the live-secret counter of (environment, type) by ``delta`` (writers are serialised)."""
        key = {"env": environment, "stype": secret_type, "delta": delta}
        self._fast(_COUNT_BUMP, key)
        if self._cursor.rowcount == 0:
            self._fast(_COUNT_INSERT, key)

    def count_secrets_by(self) -> list[RowMapping]:
        """Live secrets counted by environment and type (from the counters, not a scan)."""
        c = secret_counts.c
        return self._all(select(c.environment, c.secret_type, c.n).where(c.n != 0))

    def recount_secrets(self) -> None:
        """Rebuild the counters from the secrets table (after a bulk load that bypassed the vault)."""
        self.conn.execute(delete(secret_counts))
        self.conn.execute(insert(secret_counts).from_select(
            ["environment", "secret_type", "n"],
            select(_S.environment, _S.secret_type, func.count()).where(_S.deleted_at.is_(None))
            .group_by(_S.environment, _S.secret_type)))

    def count_where(self, *clauses: Any) -> int:
        return self.conn.execute(select(func.count()).select_from(secrets)
                                 .where(_S.deleted_at.is_(None), *clauses)).scalar_one()

    # -- principals ---------------------------------------------------------------
    def get_principal(self, name: str) -> RowMapping | None:
        return self._one(select(principals).where(principals.c.name == name))

    def insert_principal(self, **values: Any) -> None:
        self.conn.execute(insert(principals).values(**values))

    def update_principal(self, name: str, **values: Any) -> None:
        self.conn.execute(update(principals).where(principals.c.name == name).values(**values))

    def list_principals(self) -> list[RowMapping]:
        return self._all(select(principals).order_by(principals.c.name))

    # -- access rules ----------------------------------------------------------------
    def list_rules(self) -> list[RowMapping]:
        return self._all(select(access_rules).order_by(access_rules.c.id))

    def insert_rule(self, **values: Any) -> int:
        return self.conn.execute(insert(access_rules).values(**values)).inserted_primary_key[0]

    def get_rule(self, rule_id: int) -> RowMapping | None:
        return self._one(select(access_rules).where(access_rules.c.id == rule_id))

    def delete_rule(self, rule_id: int) -> None:
        self.conn.execute(delete(access_rules).where(access_rules.c.id == rule_id))

    def delete_rules_of_secret(self, secret_id: str) -> None:
        self.conn.execute(delete(access_rules).where(access_rules.c.secret_id == secret_id))

    # -- audit ------------------------------------------------------------------------------
    def append_audit(self, row: dict[str, Any], day: int) -> None:
        """Insert one chained row, move the head and count it, all in this transaction."""
        self._fast(_AUDIT_INSERT, {c: row.get(c) for c in _AUDIT_COLUMNS})
        self._fast(_HEAD_UPDATE, {"h_seq": row["seq"], "h_mac": row["mac"]})
        key = {"d_day": day, "d_op": row["operation"], "d_outcome": row["outcome"]}
        self._fast(_DAILY_BUMP, key)
        if self._cursor.rowcount == 0:
            self._fast(_DAILY_INSERT, key)

    def iter_audit(self, batch: int = 5000):
        """Every row in chain order as plain dicts, read in batches (verification, backups).

        Driver rows, not RowMappings: verifying a million rows is dominated by
        per-row overhead, and this path is 3x cheaper.
        """
        after = 0
        while True:
            prep = self._fast(_AUDIT_RANGE, {"after": after, "lim": batch})
            rows = self._cursor.fetchall()
            for r in rows:
                row = dict(zip(prep.columns, r))
                row["forwarded_trusted"] = bool(row["forwarded_trusted"])  # SQLite hands back 0/1
                yield row
            if len(rows) < batch:
                return
            after = rows[-1][0]

    def query_audit(self, *, where: Sequence[Any], before: tuple[int, int] | None, limit: int) -> list[RowMapping]:
        """Newest first by (ts, seq), keyset-paginated: the indexes end in (ts, seq)."""
        a = audit_log.c
        stmt = select(audit_log).order_by(a.ts.desc(), a.seq.desc()).limit(limit)
        for clause in where:
            stmt = stmt.where(clause)
        if before is not None:
            stmt = stmt.where(or_(a.ts < before[0], and_(a.ts == before[0], a.seq < before[1])))
        return self._all(stmt)

    def audit_daily_counts(self, since_day: int) -> list[RowMapping]:
        return self._all(select(audit_daily).where(audit_daily.c.day >= since_day)
                         .order_by(audit_daily.c.day))

