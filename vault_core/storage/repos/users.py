"""Console users' sessions (``sessions``) and login attempts (``login_failures``: pending or failed).

Session ids are keyed hashes of the session token, never the token itself,
so a database reader cannot replay a cookie.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, select, update

from ..schema import login_failures, principals, sessions
from ..tx import Tx

_F, _SN = login_failures.c, sessions.c


def attempt_counts(tx: Tx, principal: str, source: str, *, source_since: int, account_since: int
                   ) -> tuple[int, int | None, int]:
    """(attempts from ``source`` since ``source_since``, the newest one's time, attempts from anywhere
    since ``account_since``) on ``principal``; pending attempts count. One query."""
    from_source = and_(_F.source == source, _F.ts >= source_since)
    row = tx.one(select(func.coalesce(func.sum(case((from_source, 1), else_=0)), 0).label("n_source"),
                        func.max(case((from_source, _F.ts), else_=None)).label("last"),
                        func.count().label("n_account"))
                 .where(and_(_F.principal == principal, _F.ts >= account_since)))
    return int(row["n_source"]), (None if row["last"] is None else int(row["last"])), int(row["n_account"])


def count_failures_since(tx: Tx, since: int) -> int:
    """Failed logins of every principal at or after ``since`` (the health report)."""
    return int(tx.scalar(select(func.count()).select_from(login_failures).where(_F.ts >= since)))


def add_attempt(tx: Tx, principal: str, source: str, ts: int) -> int:
    """Record a pending attempt (a failure unless ``settle_attempt`` says otherwise); returns its id."""
    return int(tx.insert_id(insert(login_failures).values(principal=principal, source=source, ts=ts, pending=True)))


def settle_attempt(tx: Tx, attempt_id: int, principal: str, source: str, ok: bool) -> None:
    """A checked attempt: a success forgets its source's failures, a failure stays counted."""
    if ok:
        tx.run(delete(login_failures).where(and_(_F.principal == principal, _F.source == source)))
    else:
        tx.run(update(login_failures).where(_F.id == attempt_id).values(pending=False))


def clear_failures(tx: Tx, principal: str, before: int | None = None) -> None:
    """Forget attempts on ``principal`` (all, or only those older than ``before``)."""
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
