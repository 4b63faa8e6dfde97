"""Queries for application helpers (the ``st.secrets`` replacement): versions, never values."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, bindparam, select

from .repository import Tx
from .schema import secrets

_S = secrets.c

# Built once: SQLAlchemy reuses the compiled form (this runs on every cache check).
_LIVE_VERSIONS = (select(_S.name, _S.current_version, _S.tags)
                  .where(and_(_S.environment == bindparam("env"), _S.deleted_at.is_(None))))


def live_versions(tx: Tx, environment: str, names: Sequence[str] | None = None) -> list[tuple[str, int, str]]:
    """(name, current version, tags JSON) of the live secrets of one environment."""
    if names is None:  # the common case runs on the driver cursor (see Tx._fast)
        tx._fast(_LIVE_VERSIONS, {"env": environment})
        return [(r[0], r[1], r[2]) for r in tx._cursor.fetchall()]
    stmt = _LIVE_VERSIONS.where(_S.name.in_(list(names)))
    return [(r[0], r[1], r[2]) for r in tx.conn.execute(stmt, {"env": environment})]
