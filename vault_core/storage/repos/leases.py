"""Leases (``leases``): one holder at a time across processes and replicas (the scheduler's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, or_, select, update

from ..schema import leases
from ..tx import Tx

_L = leases.c


def acquire_lease(tx: Tx, name: str, holder: str, now: int, ttl_us: int) -> bool:
    """Take or renew ``name`` for ``holder`` unless another holder's lease is still valid.

    One conditional UPDATE (PostgreSQL re-checks the WHERE after waiting on the
    row lock; SQLite holds the write lock from BEGIN), else an INSERT that does
    nothing on conflict: whichever way the race goes, only one process wins.
    """
    if tx.run(update(leases).where(and_(_L.name == name, or_(_L.holder == holder, _L.expires_at <= now)))
              .values(holder=holder, expires_at=now + ttl_us)) == 1:
        return True
    if tx.backend == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    won = tx.one(dialect_insert(leases).values(name=name, holder=holder, expires_at=now + ttl_us)
                 .on_conflict_do_nothing(index_elements=["name"]).returning(_L.name))
    return won is not None  # (rowcount is not reliable with RETURNING on every driver)


def release_lease(tx: Tx, name: str, holder: str) -> None:
    tx.run(update(leases).where(and_(_L.name == name, _L.holder == holder)).values(expires_at=0))


def lease_holder(tx: Tx, name: str) -> Mapping[str, Any] | None:
    return tx.one(select(leases).where(_L.name == name))
