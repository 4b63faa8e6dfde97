"""Console users' sessions (``sessions``) and failed logins (``login_failures``).

Session ids are keyed hashes of the session token, never the token itself,
so a database reader cannot replay a cookie.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update

from ..schema import login_failures, principals, sessions
from ..tx import Tx

_F, _SN = login_failures.c, sessions.c


def count_failures(tx: Tx, principal: str, since: int) -> int:
    """Failed logins of ``principal`` at or after ``since`` (microseconds)."""
    return int(tx.scalar(select(func.count()).select_from(login_failures)
                         .where(and_(_F.principal == principal, _F.ts >= since))))


def count_failures_since(tx: Tx, since: int) -> int:
    """Failed logins of every principal at or after ``since`` (the health report)."""
    return int(tx.scalar(select(func.count()).select_from(login_failures).where(_F.ts >= since)))


def add_failure(tx: Tx, principal: str, ts: int) -> None:
    tx.run(insert(login_failures).values(principal=principal, ts=ts))


def clear_failures(tx: Tx, principal: str, before: int | None = None) -> None:
    """Forget failures of ``principal`` (all, or only those older than ``before``)."""
    cond = _F.principal == principal
    if before is not None:
        cond = and_(cond, _F.ts < before)
    tx.run(delete(login_failures).where(cond))


def insert_session(tx: Tx, **values: Any) -> None:
    tx.run(insert(sessions).values(**values))


def get_session(tx: Tx, session_id: str) -> Mapping[str, Any] | None:
    return tx.one(select(sessions).where(_SN.id == session_id))


def session_with_principal(tx: Tx, session_id: str) -> Mapping[str, Any] | None:
    """A session joined with its principal's state (one query per console rerun)."""
    p = principals.c
    return tx.one(select(_SN.id, _SN.principal, _SN.expires_at, _SN.revoked_at, _SN.epoch, p.roles,
                         p.session_epoch, p.locked_until, p.disabled, p.must_change_password, p.display_name)
                  .select_from(sessions.join(principals, p.name == _SN.principal)).where(_SN.id == session_id))


def revoke_session(tx: Tx, session_id: str, ts: int) -> bool:
    return tx.run(update(sessions).where(and_(_SN.id == session_id, _SN.revoked_at.is_(None)))
                  .values(revoked_at=ts)) > 0


def revoke_sessions_of(tx: Tx, principal: str, ts: int) -> int:
    return tx.run(update(sessions).where(and_(_SN.principal == principal, _SN.revoked_at.is_(None)))
                  .values(revoked_at=ts))


def active_sessions(tx: Tx, principal: str | None, now: int) -> list[Mapping[str, Any]]:
    stmt = select(_SN.id, _SN.principal, _SN.created_at, _SN.expires_at, _SN.client_ip, _SN.user_agent, _SN.epoch)\
        .where(and_(_SN.revoked_at.is_(None), _SN.expires_at > now)).order_by(_SN.created_at.desc())
    if principal is not None:
        stmt = stmt.where(_SN.principal == principal)
    return tx.all(stmt)


def prune_sessions(tx: Tx, before: int) -> int:
    """Drop sessions that expired or were revoked before ``before``."""
    return tx.run(delete(sessions).where(
        (_SN.expires_at < before) | (and_(_SN.revoked_at.is_not(None), _SN.revoked_at < before))))
