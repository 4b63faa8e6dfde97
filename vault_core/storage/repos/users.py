"""Console users' sessions (``sessions``), login attempts (``login_failures``: pending or failed) and
two-factor state (``two_factor``, ``recovery_codes``, ``two_factor_roles``).

Session ids are keyed hashes of the session token, never the token itself,
so a database reader cannot replay a cookie. Session rows are MACed and
checked on read (``integrity``): an ended session brought back is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, select, update

from ..schema import login_failures, recovery_codes, sessions, two_factor, two_factor_roles
from ..tx import Tx
from . import integrity, principals as _principals

_F, _SN = login_failures.c, sessions.c
_SESSIONS = "sessions"


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


def settle_attempt(tx: Tx, attempt_id: int, principal: str, source: str, ok: bool, *,
                   forget: bool = True) -> None:
    """A checked attempt: a success forgets its source's failures (only itself unless ``forget``: a
    password that still needs its second factor), a failure stays counted."""
    if ok and forget:
        tx.run(delete(login_failures).where(and_(_F.principal == principal, _F.source == source)))
    elif ok:
        tx.run(delete(login_failures).where(_F.id == attempt_id))
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
    integrity.reseal(tx, _SESSIONS, _SN.id == values["id"])


def get_session(tx: Tx, session_id: str) -> Mapping[str, Any] | None:
    """The session row, or None. Raises ``IntegrityError``, ``Sealed``."""
    row = tx.one(select(sessions).where(_SN.id == session_id))
    return None if row is None else integrity.check(tx, _SESSIONS, [row])[0]


def session_with_principal(tx: Tx, session_id: str) -> Mapping[str, Any] | None:
    """A session and its principal's state, both checked (one console rerun).

    Raises ``IntegrityError``, ``Sealed``.
    """
    row = get_session(tx, session_id)
    if row is None:
        return None
    who = _principals.get_principal(tx, row["principal"])
    if who is None:
        return None
    keep = ("roles", "session_epoch", "locked_until", "disabled", "must_change_password", "display_name")
    enrolment = get_two_factor(tx, row["principal"])
    return {**{k: row[k] for k in ("id", "principal", "expires_at", "revoked_at", "epoch")},
            **{k: who[k] for k in keep}, "two_factor_on": enrolment["confirmed_at"] if enrolment else None}


def revoke_session(tx: Tx, session_id: str, ts: int) -> bool:
    if tx.run(update(sessions).where(and_(_SN.id == session_id, _SN.revoked_at.is_(None)))
              .values(revoked_at=ts)) == 0:
        return False
    integrity.reseal(tx, _SESSIONS, _SN.id == session_id)
    return True


def revoke_sessions_of(tx: Tx, principal: str, ts: int) -> int:
    n = tx.run(update(sessions).where(and_(_SN.principal == principal, _SN.revoked_at.is_(None)))
               .values(revoked_at=ts))
    if n:
        integrity.reseal(tx, _SESSIONS, and_(_SN.principal == principal, _SN.revoked_at == ts))
    return n


def active_sessions(tx: Tx, principal: str | None, now: int) -> list[Mapping[str, Any]]:
    stmt = select(_SN.id, _SN.principal, _SN.created_at, _SN.expires_at, _SN.client_ip, _SN.user_agent, _SN.epoch)\
        .where(and_(_SN.revoked_at.is_(None), _SN.expires_at > now)).order_by(_SN.created_at.desc())
    if principal is not None:
        stmt = stmt.where(_SN.principal == principal)
    return tx.all(stmt)


def prune_sessions(tx: Tx, before: int) -> int:
    """Drop sessions that expired or were revoked before ``before``."""
    return integrity.delete(tx, _SESSIONS,
                            (_SN.expires_at < before) | (and_(_SN.revoked_at.is_not(None), _SN.revoked_at < before)))


# -- two-factor ------------------------------------------------------------------------------------
_T, _R, _Q = two_factor.c, recovery_codes.c, two_factor_roles.c


def get_two_factor(tx: Tx, principal: str) -> Mapping[str, Any] | None:
    """``principal``'s enrolment, checked (``integrity``: deleting it would switch two-factor off).

    Raises ``IntegrityError``, ``Sealed``.
    """
    row = tx.one(select(two_factor).where(_T.principal == principal))
    if row is None:  # not enrolled, or an enrolment deleted behind the vault's back: the digest tells
        integrity.check(tx, "two_factor", [], fresh=True)
        return None
    return integrity.check(tx, "two_factor", [row])[0]


def put_two_factor(tx: Tx, principal: str, **values: Any) -> None:
    """A new (pending) enrolment of ``principal``, replacing any older one and its recovery codes."""
    delete_two_factor(tx, principal)
    tx.run(insert(two_factor).values(principal=principal, **values))
    integrity.reseal(tx, "two_factor", _T.principal == principal)


def put_recovery_codes(tx: Tx, principal: str, hashes: list[str]) -> None:
    """Replace ``principal``'s recovery codes with these (unused) hashes."""
    tx.run(delete(recovery_codes).where(_R.principal == principal))
    tx.run(insert(recovery_codes), [{"principal": principal, "code_hash": h} for h in hashes])


def delete_two_factor(tx: Tx, principal: str) -> bool:
    """Forget ``principal``'s enrolment and recovery codes; True if there was one."""
    tx.run(delete(recovery_codes).where(_R.principal == principal))
    return integrity.delete(tx, "two_factor", _T.principal == principal) > 0


def confirm_two_factor(tx: Tx, principal: str, step: int, ts: int) -> bool:
    """Mark a pending enrolment confirmed by the code of ``step``; False if it was not pending."""
    return _resealed(tx, principal, tx.run(update(two_factor).where(
        and_(_T.principal == principal, _T.confirmed_at.is_(None))).values(confirmed_at=ts, last_step=step)))


def use_step(tx: Tx, principal: str, step: int) -> bool:
    """Accept time step ``step`` once: True only if it is newer than every step accepted before
    (a compare-and-set, so two racing uses of one code cannot both win)."""
    return _resealed(tx, principal, tx.run(update(two_factor).where(
        and_(_T.principal == principal, _T.confirmed_at.is_not(None),
             (_T.last_step.is_(None)) | (_T.last_step < step))).values(last_step=step)))


def _resealed(tx: Tx, principal: str, changed: int) -> bool:
    if changed:
        integrity.reseal(tx, "two_factor", _T.principal == principal)
    return changed > 0


def use_recovery_code(tx: Tx, principal: str, code_hash: str, ts: int) -> bool:
    """Spend an unused recovery code; False if it is unknown or was used (a compare-and-set)."""
    return tx.run(update(recovery_codes).where(and_(_R.principal == principal, _R.code_hash == code_hash,
                                                    _R.used_at.is_(None))).values(used_at=ts)) > 0


def recovery_codes_left(tx: Tx, principal: str) -> int:
    return int(tx.scalar(select(func.count()).select_from(recovery_codes)
                         .where(and_(_R.principal == principal, _R.used_at.is_(None)))))


def admin_enrolled(tx: Tx) -> bool:
    """Whether some user with the ``admin`` role has two-factor on (roles are a JSON list)."""
    on = {r["principal"] for r in integrity.check(tx, "two_factor", tx.all(select(two_factor)), whole=True)
          if r["confirmed_at"] is not None}
    return any(p["name"] in on and "admin" in json.loads(p["roles"]) for p in _principals.list_principals(tx))


def two_factor_below(tx: Tx, term: int) -> list[Mapping[str, Any]]:
    """Enrolments whose secret is sealed under a term older than ``term`` (re-encryption)."""
    return list(integrity.check(tx, "two_factor", tx.all(select(two_factor).where(_T.key_term < term))))


def reseal_two_factor(tx: Tx, principal: str, old_term: int, secret: bytes, term: int) -> bool:
    """Replace a secret re-sealed under ``term``, unless it changed meanwhile (re-enrolled)."""
    return _resealed(tx, principal, tx.run(update(two_factor).where(
        and_(_T.principal == principal, _T.key_term == old_term)).values(secret=secret, key_term=term)))


def two_factor_terms(tx: Tx) -> set[int]:
    """The key terms some two-factor secret is sealed under (a term in use is not retired)."""
    return {int(r["key_term"]) for r in tx.all(select(_T.key_term).distinct())}


def two_factor_roles_policy(tx: Tx) -> dict[str, bool]:
    """Roles with an explicit two-factor setting: role → required."""
    rows = integrity.check(tx, "two_factor_roles", tx.all(select(two_factor_roles)), whole=True)
    return {r["role"]: bool(r["required"]) for r in rows}


def set_two_factor_role(tx: Tx, role: str, required: bool, ts: int, by: str) -> None:
    integrity.delete(tx, "two_factor_roles", _Q.role == role)
    tx.run(insert(two_factor_roles).values(role=role, required=required, updated_at=ts, updated_by=by))
    integrity.reseal(tx, "two_factor_roles", _Q.role == role)
