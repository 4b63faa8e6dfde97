"""Queries for rotation, the scheduler lease and re-encryption (functions over a ``Tx``).

Opaque bytes and metadata only, like the repository: no key or plaintext here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping

from .repository import Tx
from .schema import audit_log, leases, rekey_jobs, secret_versions, secrets, wrapped_keys

_S, _V, _L, _W, _J = secrets.c, secret_versions.c, leases.c, wrapped_keys.c, rekey_jobs.c


# -- the lease: one holder at a time across processes and replicas -----------------------
def acquire_lease(tx: Tx, name: str, holder: str, now: int, ttl_us: int) -> bool:
    """Take or renew ``name`` for ``holder`` unless another holder's lease is still valid.

    One conditional UPDATE (PostgreSQL re-checks the WHERE after waiting on the
    row lock; SQLite holds the write lock from BEGIN), else an INSERT that does
    nothing on conflict: whichever way the race goes, only one process wins.
    """
    res = tx.conn.execute(update(leases)
                          .where(and_(_L.name == name, or_(_L.holder == holder, _L.expires_at <= now)))
                          .values(holder=holder, expires_at=now + ttl_us))
    if res.rowcount == 1:
        return True
    if tx.backend == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    res = tx.conn.execute(dialect_insert(leases).values(name=name, holder=holder, expires_at=now + ttl_us)
                          .on_conflict_do_nothing(index_elements=["name"]).returning(_L.name))
    return res.first() is not None  # (rowcount is not reliable with RETURNING on every driver)


def release_lease(tx: Tx, name: str, holder: str) -> None:
    tx.conn.execute(update(leases).where(and_(_L.name == name, _L.holder == holder)).values(expires_at=0))


def lease_holder(tx: Tx, name: str) -> RowMapping | None:
    row = tx.conn.execute(select(leases).where(_L.name == name)).first()
    return None if row is None else row._mapping


# -- due rotations -----------------------------------------------------------------------------
def due_secret_ids(tx: Tx, now: int, limit: int) -> list[str]:
    """Live secrets whose rotation is due, oldest due first (uses ix_secrets_next_rotation)."""
    stmt = (select(_S.id).where(and_(_S.next_rotation_at <= now, _S.deleted_at.is_(None)))
            .order_by(_S.next_rotation_at, _S.id).limit(limit))
    return [r[0] for r in tx.conn.execute(stmt)]


def claim_due(tx: Tx, secret_id: str, now: int, retry_at: int) -> bool:
    """Move a due secret's next rotation to ``retry_at`` only if it is still due: the once-only check."""
    res = tx.conn.execute(update(secrets)
                          .where(and_(_S.id == secret_id, _S.next_rotation_at <= now, _S.deleted_at.is_(None)))
                          .values(next_rotation_at=retry_at))
    return res.rowcount == 1


def upcoming(tx: Tx, rotate_before: int, expire_before: int, limit: int) -> list[RowMapping]:
    """Live secrets to rotate before ``rotate_before`` or expiring before ``expire_before``."""
    cols = (_S.id, _S.environment, _S.name, _S.secret_type, _S.next_rotation_at, _S.expires_at,
            _S.last_rotated_at, _S.rotation_interval_days, _S.generator)
    out: dict[str, RowMapping] = {}
    for clause, order in ((_S.next_rotation_at <= rotate_before, _S.next_rotation_at),
                          (_S.expires_at <= expire_before, _S.expires_at)):
        stmt = select(*cols).where(and_(clause, _S.deleted_at.is_(None))).order_by(order).limit(limit)
        for r in tx.conn.execute(stmt):
            out.setdefault(r.id, r._mapping)
    return list(out.values())


# -- pending versions ------------------------------------------------------------------------------
def pending_versions(tx: Tx, secret_id: str) -> list[RowMapping]:
    stmt = (select(_V.version, _V.created_at, _V.ciphertext).where(and_(_V.secret_id == secret_id,
                                                                         _V.state == "pending")))
    return [r._mapping for r in tx.conn.execute(stmt)]


def delete_pending(tx: Tx, secret_id: str, version: int, ciphertext: bytes | None = None) -> bool:
    """Delete one PENDING version (only the one we staged, when ``ciphertext`` is given)."""
    cond = [_V.secret_id == secret_id, _V.version == version, _V.state == "pending"]
    if ciphertext is not None:
        cond.append(_V.ciphertext == ciphertext)
    return tx.conn.execute(delete(secret_versions).where(and_(*cond))).rowcount == 1


def version_blob(tx: Tx, secret_id: str, version: int) -> bytes | None:
    return tx.conn.execute(select(_V.ciphertext).where(and_(_V.secret_id == secret_id, _V.version == version))
                           ).scalar_one_or_none()


# -- history ----------------------------------------------------------------------------------------
def rotation_events(tx: Tx, operations: Sequence[str], secret_id: str | None, limit: int) -> list[RowMapping]:
    a = audit_log.c
    stmt = select(a.seq, a.ts, a.principal, a.operation, a.environment, a.secret_id, a.secret_name, a.version,
                  a.outcome, a.reason).where(a.operation.in_(list(operations)))
    if secret_id is not None:
        stmt = stmt.where(a.secret_id == secret_id)
    return [r._mapping for r in tx.conn.execute(stmt.order_by(a.ts.desc(), a.seq.desc()).limit(limit))]


# -- re-encryption -------------------------------------------------------------------------------
def data_terms(tx: Tx) -> list[RowMapping]:
    return [r._mapping for r in tx.conn.execute(select(wrapped_keys).where(_W.purpose == "data")
                                                .order_by(_W.term))]


def versions_below(tx: Tx, term: int, limit: int) -> list[RowMapping]:
    """Versions sealed under a term older than ``term``, with what their AAD and key need."""
    stmt = (select(_V.secret_id, _V.version, _V.ciphertext, _V.key_term, _S.environment, _S.name, _S.salt)
            .select_from(secret_versions.join(secrets, _S.id == _V.secret_id))
            .where(_V.key_term < term).order_by(_V.key_term, _V.secret_id, _V.version).limit(limit))
    return [r._mapping for r in tx.conn.execute(stmt)]


def count_below(tx: Tx, term: int) -> int:
    return tx.conn.execute(select(func.count()).select_from(secret_versions).where(_V.key_term < term)).scalar_one()


def versions_per_term(tx: Tx) -> dict[int, int]:
    return {r[0]: r[1] for r in tx.conn.execute(select(_V.key_term, func.count()).group_by(_V.key_term))}


_REWRITE = (update(secret_versions)
            .where(and_(_V.secret_id == bindparam("sid"), _V.version == bindparam("ver"),
                        _V.key_term == bindparam("old_term")))
            .values(ciphertext=bindparam("blob"), key_term=bindparam("new_term")))


def rewrite_versions(tx: Tx, rows: list[dict[str, Any]]) -> int:
    """Replace ciphertexts (one executemany), each only if still sealed under its ``old_term``.

    ``rows`` hold sid, ver, old_term, blob, new_term; returns how many were replaced.
    """
    if not rows:
        return 0
    return tx.conn.execute(_REWRITE, rows).rowcount


def retire_term(tx: Tx, term: int, now: int) -> None:
    tx.conn.execute(update(wrapped_keys).where(and_(_W.purpose == "data", _W.term == term, _W.retired_at.is_(None)))
                    .values(retired_at=now))


def open_job(tx: Tx, target_term: int, now: int, total: int) -> dict[str, Any]:
    """The unfinished job for ``target_term`` (resumed after a crash), or a new one."""
    row = tx.conn.execute(select(rekey_jobs).where(and_(_J.target_term == target_term, _J.finished_at.is_(None)))
                          .order_by(_J.id.desc())).first()
    if row is not None:
        tx.conn.execute(update(rekey_jobs).where(_J.id == row.id).values(total=row.done + total))
        return {**row._mapping, "total": row.done + total}
    job_id = tx.conn.execute(insert(rekey_jobs).values(target_term=target_term, started_at=now, done=0,
                                                       total=total)).inserted_primary_key[0]
    return {"id": job_id, "target_term": target_term, "started_at": now, "done": 0, "total": total,
            "finished_at": None}


def advance_job(tx: Tx, job_id: int, n: int) -> None:
    tx.conn.execute(update(rekey_jobs).where(_J.id == job_id).values(done=_J.done + n))


def finish_job(tx: Tx, job_id: int, now: int) -> None:
    tx.conn.execute(update(rekey_jobs).where(_J.id == job_id).values(finished_at=now))


def jobs(tx: Tx, limit: int = 20) -> list[RowMapping]:
    return [r._mapping for r in tx.conn.execute(select(rekey_jobs).order_by(_J.id.desc()).limit(limit))]
