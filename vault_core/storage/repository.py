"""Repository: the queries the vault runs, on one open transaction.

Everything here moves opaque bytes and plain metadata; no key or plaintext
ever reaches this module. The same methods run on SQLite and PostgreSQL
(tests/test_storage_contract.py runs one suite against both).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.engine import Connection, RowMapping

from .schema import (
    access_rules,
    audit_daily,
    audit_log,
    principals,
    secret_versions,
    secrets,
    vault_state,
    wrapped_keys,
)

_S, _V = secrets.c, secret_versions.c

_READ_CURRENT = (
    select(_S.id, _S.name, _S.environment, _S.salt, _S.current_version, _S.deleted_at, _S.secret_type,
           _V.ciphertext)
    .select_from(secrets.join(secret_versions, and_(_V.secret_id == _S.id, _V.version == _S.current_version)))
)


class Tx:
    """One database transaction, with the vault's queries as methods."""

    __slots__ = ("conn", "backend")

    def __init__(self, conn: Connection, backend: str):
        self.conn = conn
        self.backend = backend

    def _one(self, stmt) -> RowMapping | None:
        row = self.conn.execute(stmt).first()
        return row._mapping if row is not None else None

    def _all(self, stmt) -> list[RowMapping]:
        return [r._mapping for r in self.conn.execute(stmt)]

    # -- vault state ----------------------------------------------------------
    def get_state(self, *, lock: bool = False) -> RowMapping | None:
        """The single state row; ``lock`` serialises writers on PostgreSQL (SQLite's BEGIN IMMEDIATE already does)."""
        stmt = select(vault_state).where(vault_state.c.id == 1)
        if lock and self.backend == "postgresql":
            stmt = stmt.with_for_update()
        return self._one(stmt)

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
        self.conn.execute(update(wrapped_keys)
                          .where(and_(wrapped_keys.c.purpose == "data", wrapped_keys.c.term == term))
                          .values(encryptions=wrapped_keys.c.encryptions + n))

    # -- secrets ----------------------------------------------------------------
    def read_current(self, environment: str, name: str) -> RowMapping | None:
        """The hot path of a read: metadata and current ciphertext in one indexed query."""
        return self._one(_READ_CURRENT.where(and_(_S.environment == environment, _S.name == name)))

    def find_secret(self, environment: str, name: str) -> RowMapping | None:
        return self._one(select(secrets).where(and_(_S.environment == environment, _S.name == name)))

    def secret_by_id(self, secret_id: str) -> RowMapping | None:
        return self._one(select(secrets).where(_S.id == secret_id))

    def insert_secret(self, **values: Any) -> None:
        self.conn.execute(insert(secrets).values(**values))

    def update_secret(self, secret_id: str, **values: Any) -> None:
        self.conn.execute(update(secrets).where(_S.id == secret_id).values(**values))

    def cas_update_secret(self, secret_id: str, expected_version: int, **values: Any) -> bool:
        """Update only if the current version is still ``expected_version``."""
        res = self.conn.execute(update(secrets)
                                .where(and_(_S.id == secret_id, _S.current_version == expected_version))
                                .values(**values))
        return res.rowcount == 1

    def purge_secret(self, secret_id: str) -> None:
        self.conn.execute(delete(secret_versions).where(_V.secret_id == secret_id))
        self.conn.execute(delete(secrets).where(_S.id == secret_id))

    def insert_version(self, **values: Any) -> None:
        self.conn.execute(insert(secret_versions).values(**values))

    def get_version(self, secret_id: str, version: int) -> RowMapping | None:
        return self._one(select(secret_versions).where(and_(_V.secret_id == secret_id, _V.version == version)))

    def set_version_state(self, secret_id: str, version: int, state: str) -> None:
        self.conn.execute(update(secret_versions)
                          .where(and_(_V.secret_id == secret_id, _V.version == version)).values(state=state))

    def demote_versions(self, secret_id: str, keep: Sequence[int]) -> None:
        """Mark every version but ``keep`` as old (labels move with a new current)."""
        self.conn.execute(update(secret_versions)
                          .where(and_(_V.secret_id == secret_id, _V.version.notin_(keep),
                                      _V.state.in_(("current", "previous"))))
                          .values(state="old"))

    def prune_versions(self, secret_id: str, below: int, keep: Sequence[int] = ()) -> None:
        """Destroy versions older than ``below`` except those in ``keep``."""
        self.conn.execute(delete(secret_versions)
                          .where(and_(_V.secret_id == secret_id, _V.version < below, _V.version.notin_(keep))))

    def delete_version(self, secret_id: str, version: int) -> None:
        self.conn.execute(delete(secret_versions).where(and_(_V.secret_id == secret_id, _V.version == version)))

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
        extra_where: Sequence[Any] = (),
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
            stmt = stmt.where(tuple_(_S.environment, _S.name) > tuple_(*after))
        for clause in extra_where:
            stmt = stmt.where(clause)
        return self._all(stmt)

    def count_secrets_by(self) -> list[RowMapping]:
        """Live secrets counted by environment and type."""
        return self._all(select(_S.environment, _S.secret_type, func.count().label("n"))
                         .where(_S.deleted_at.is_(None)).group_by(_S.environment, _S.secret_type))

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
        self.conn.execute(insert(audit_log).values(**row))
        self.conn.execute(update(vault_state).where(vault_state.c.id == 1)
                          .values(audit_seq=row["seq"], audit_mac=row["mac"]))
        key = {"day": day, "operation": row["operation"], "outcome": row["outcome"]}
        if self.conn.execute(update(audit_daily).where(and_(*(audit_daily.c[k] == v for k, v in key.items())))
                             .values(count=audit_daily.c.count + 1)).rowcount == 0:
            self.conn.execute(insert(audit_daily).values(count=1, **key))

    def audit_range(self, after_seq: int, limit: int) -> list[RowMapping]:
        """Rows in chain order, for verification."""
        return self._all(select(audit_log).where(audit_log.c.seq > after_seq)
                         .order_by(audit_log.c.seq).limit(limit))

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

