"""Machine identities (``machine_roles``, ``machine_secret_ids``, ``machine_tokens``).

Rows hold SHA-256 digests of secret ids and tokens, never the values, so a
database reader can neither log in nor replay a token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update

from ..schema import machine_roles, machine_secret_ids, machine_tokens, principals
from ..tx import Tx

_R, _S, _T = machine_roles.c, machine_secret_ids.c, machine_tokens.c


def insert_role(tx: Tx, **values: Any) -> None:
    tx.run(insert(machine_roles).values(**values))


def update_role(tx: Tx, principal: str, **values: Any) -> None:
    tx.run(update(machine_roles).where(_R.principal == principal).values(**values))


def get_role(tx: Tx, principal: str) -> Mapping[str, Any] | None:
    return tx.one(select(machine_roles).where(_R.principal == principal))


def role_by_role_id(tx: Tx, role_id: str) -> Mapping[str, Any] | None:
    return tx.one(select(machine_roles).where(_R.role_id == role_id))


def list_roles(tx: Tx, now: int) -> list[Mapping[str, Any]]:
    """Every machine with its count of live secret ids and live tokens."""
    live_ids = (select(func.count()).where(and_(_S.principal == _R.principal, _S.revoked_at.is_(None)))
                .scalar_subquery())
    live_tokens = (select(func.count()).where(and_(_T.principal == _R.principal, _T.revoked_at.is_(None),
                                                   _T.expires_at > now)).scalar_subquery())
    return tx.all(select(machine_roles, live_ids.label("secret_ids"), live_tokens.label("tokens"))
                  .order_by(_R.principal))


def delete_role(tx: Tx, principal: str) -> None:
    for table, col in ((machine_tokens, _T.principal), (machine_secret_ids, _S.principal),
                       (machine_roles, _R.principal)):
        tx.run(delete(table).where(col == principal))


def insert_secret_id(tx: Tx, **values: Any) -> None:
    tx.run(insert(machine_secret_ids).values(**values))


def get_secret_id(tx: Tx, digest: str) -> Mapping[str, Any] | None:
    return tx.one(select(machine_secret_ids).where(_S.id == digest))


def use_secret_id(tx: Tx, digest: str) -> bool:
    """Spend one use of a limited secret id (True if one was left; unlimited ones always True)."""
    row = get_secret_id(tx, digest)
    if row is None or row["uses_left"] is None:
        return row is not None
    return tx.run(update(machine_secret_ids).where(and_(_S.id == digest, _S.uses_left > 0))
                  .values(uses_left=_S.uses_left - 1)) > 0


def revoke_secret_ids(tx: Tx, principal: str, ts: int) -> int:
    return tx.run(update(machine_secret_ids).where(and_(_S.principal == principal, _S.revoked_at.is_(None)))
                  .values(revoked_at=ts))


def insert_token(tx: Tx, **values: Any) -> None:
    tx.run(insert(machine_tokens).values(**values))


def token_with_principal(tx: Tx, digest: str) -> Mapping[str, Any] | None:
    """A token joined with its principal's state and its machine's TTL (one query per API call).

    None when the token is unknown or its machine was deleted."""
    p = principals.c
    return tx.one(select(machine_tokens, p.session_epoch, p.disabled, p.locked_until, _R.token_ttl)
                  .select_from(machine_tokens.join(principals, p.name == _T.principal)
                               .join(machine_roles, _R.principal == _T.principal)).where(_T.id == digest))


def extend_token(tx: Tx, digest: str, expires_at: int) -> None:
    tx.run(update(machine_tokens).where(_T.id == digest).values(expires_at=expires_at))


def revoke_token(tx: Tx, digest: str, ts: int) -> bool:
    return tx.run(update(machine_tokens).where(and_(_T.id == digest, _T.revoked_at.is_(None)))
                  .values(revoked_at=ts)) > 0


def revoke_tokens_of(tx: Tx, principal: str, ts: int) -> int:
    return tx.run(update(machine_tokens).where(and_(_T.principal == principal, _T.revoked_at.is_(None)))
                  .values(revoked_at=ts))


def prune_tokens(tx: Tx, before: int) -> int:
    """Forget tokens that expired or were revoked before ``before``."""
    return tx.run(delete(machine_tokens).where(
        (_T.expires_at < before) | (and_(_T.revoked_at.is_not(None), _T.revoked_at < before))))
