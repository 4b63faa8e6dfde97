"""Queries for console users: sessions and failed logins (functions taking a ``Tx``).

Session ids are keyed hashes of the session token, never the token itself,
so a database reader cannot replay a cookie.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import RowMapping

from .repository import Tx
from .schema import login_failures, principals, sessions

_F, _SN = login_failures.c, sessions.c


def count_failures(tx: Tx, principal: str, since: int) -> int:
    """Failed logins of ``principal`` at or after ``since`` (microseconds)."""
    stmt = select(func.count()).select_from(login_failures).where(and_(_F.principal == principal, _F.ts >= since))
    return int(tx.conn.execute(stmt).scalar_one())


def add_failure(tx: Tx, principal: str, ts: int) -> None:
    tx.conn.execute(insert(login_failures).values(principal=principal, ts=ts))


def clear_failures(tx: Tx, principal: str, before: int | None = None) -> None:
    """Forget failures of ``principal`` (all, or only those older than ``before``)."""
    cond = _F.principal == principal
    if before is not None:
        cond = and_(cond, _F.ts < before)
    tx.conn.execute(delete(login_failures).where(cond))


def insert_session(tx: Tx, **values: Any) -> None:
    tx.conn.execute(insert(sessions).values(**values))


def get_session(tx: Tx, session_id: str) -> RowMapping | None:
    row = tx.conn.execute(select(sessions).where(_SN.id == session_id)).first()
    return None if row is None else row._mapping


def session_with_principal(tx: Tx, session_id: str) -> RowMapping | None:
    """A session joined with its principal's state (one query per console rerun)."""
    p = principals.c
    stmt = (select(_SN.id, _SN.principal, _SN.expires_at, _SN.revoked_at, _SN.epoch, p.roles,
                   p.session_epoch, p.locked_until, p.disabled, p.must_change_password, p.display_name)
            .select_from(sessions.join(principals, principals.c.name == _SN.principal))
            .where(_SN.id == session_id))
    row = tx.conn.execute(stmt).first()
    return None if row is None else row._mapping


def revoke_session(tx: Tx, session_id: str, ts: int) -> bool:
    res = tx.conn.execute(update(sessions).where(and_(_SN.id == session_id, _SN.revoked_at.is_(None)))
                          .values(revoked_at=ts))
    return bool(res.rowcount)


def revoke_sessions_of(tx: Tx, principal: str, ts: int) -> int:
    res = tx.conn.execute(update(sessions).where(and_(_SN.principal == principal, _SN.revoked_at.is_(None)))
                          .values(revoked_at=ts))
    return int(res.rowcount or 0)


def active_sessions(tx: Tx, principal: str | None, now: int) -> list[RowMapping]:
    stmt = select(_SN.id, _SN.principal, _SN.created_at, _SN.expires_at, _SN.client_ip, _SN.user_agent, _SN.epoch)\
        .where(and_(_SN.revoked_at.is_(None), _SN.expires_at > now)).order_by(_SN.created_at.desc())
    if principal is not None:
        stmt = stmt.where(_SN.principal == principal)
    return [r._mapping for r in tx.conn.execute(stmt)]


def prune_sessions(tx: Tx, before: int) -> int:
    """Drop sessions that expired or were revoked before ``before``."""
    res = tx.conn.execute(delete(sessions).where(
        (_SN.expires_at < before) | (and_(_SN.revoked_at.is_not(None), _SN.revoked_at < before))))
    return int(res.rowcount or 0)
