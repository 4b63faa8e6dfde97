"""Machine identities (``machine_roles``, ``machine_secret_ids``, ``machine_tokens``).

Rows hold SHA-256 digests of secret ids and tokens, never the values, so a
database reader can neither log in nor replay a token; every row is MACed and checked on read
(``integrity``), so a database writer can neither unbind a network, revive a token nor extend one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, update

from ..schema import machine_roles, machine_secret_ids, machine_tokens, principals
from ..tx import Hot, Tx
from . import integrity

_R, _S, _T = machine_roles.c, machine_secret_ids.c, machine_tokens.c


_ROLES, _IDS, _TOKENS = "machine_roles", "machine_secret_ids", "machine_tokens"


def _checked(tx: Tx, table: str, row: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if row is None else integrity.check(tx, table, [row])[0]


def insert_role(tx: Tx, **values: Any) -> None:
    tx.run(insert(machine_roles).values(**values))
    integrity.reseal(tx, _ROLES, _R.principal == values["principal"])


def update_role(tx: Tx, principal: str, **values: Any) -> None:
    tx.run(update(machine_roles).where(_R.principal == principal).values(**values))
    integrity.reseal(tx, _ROLES, _R.principal == principal)


def get_role(tx: Tx, principal: str) -> Mapping[str, Any] | None:
    """Raises ``IntegrityError`` (the row was changed outside the vault)."""
    return _checked(tx, _ROLES, tx.one(select(machine_roles).where(_R.principal == principal)))


def role_by_role_id(tx: Tx, role_id: str) -> Mapping[str, Any] | None:
    """Raises ``IntegrityError`` (the row was changed outside the vault)."""
    return _checked(tx, _ROLES, tx.one(select(machine_roles).where(_R.role_id == role_id)))


def list_roles(tx: Tx, now: int) -> list[Mapping[str, Any]]:
    """Every machine with its count of live secret ids and live tokens."""
    live_ids = (select(func.count()).where(and_(_S.principal == _R.principal, _S.revoked_at.is_(None)))
                .scalar_subquery())
    live_tokens = (select(func.count()).where(and_(_T.principal == _R.principal, _T.revoked_at.is_(None),
                                                   _T.expires_at > now)).scalar_subquery())
    stmt = select(machine_roles, live_ids.label("secret_ids"), live_tokens.label("tokens")).order_by(_R.principal)
    return list(integrity.check(tx, _ROLES, tx.all(stmt), whole=True, again=lambda: tx.all(stmt)))


def delete_role(tx: Tx, principal: str) -> None:
    for table, col in ((_TOKENS, _T.principal), (_IDS, _S.principal), (_ROLES, _R.principal)):
        integrity.delete(tx, table, col == principal)


def insert_secret_id(tx: Tx, **values: Any) -> None:
    tx.run(insert(machine_secret_ids).values(**values))
    integrity.reseal(tx, _IDS, _S.id == values["id"])


def get_secret_id(tx: Tx, digest: str) -> Mapping[str, Any] | None:
    """Raises ``IntegrityError`` (the row was changed outside the vault)."""
    return _checked(tx, _IDS, tx.one(select(machine_secret_ids).where(_S.id == digest)))


def use_secret_id(tx: Tx, digest: str) -> bool:
    """Spend one use of a limited secret id (True if one was left; unlimited ones always True)."""
    row = get_secret_id(tx, digest)
    if row is None or row["uses_left"] is None:
        return row is not None
    if tx.run(update(machine_secret_ids).where(and_(_S.id == digest, _S.uses_left > 0))
              .values(uses_left=_S.uses_left - 1)) == 0:
        return False
    integrity.reseal(tx, _IDS, _S.id == digest)
    return True


def revoke_secret_ids(tx: Tx, principal: str, ts: int) -> int:
    n = tx.run(update(machine_secret_ids).where(and_(_S.principal == principal, _S.revoked_at.is_(None)))
               .values(revoked_at=ts))
    if n:
        integrity.reseal(tx, _IDS, and_(_S.principal == principal, _S.revoked_at == ts))
    return n


def insert_token(tx: Tx, **values: Any) -> None:
    tx.run(insert(machine_tokens).values(**values))
    integrity.reseal(tx, _TOKENS, _T.id == values["id"])


def token_with_principal(tx: Tx, digest: str) -> Mapping[str, Any] | None:
    """A token joined with its principal's state and its machine's TTL (one query per API call).

    None when the token is unknown or its machine was deleted. All three rows are checked (a lock or a
    disabled flag erased in the file must not revive a token). Raises ``IntegrityError``."""
    row = tx.one(_TOKEN_JOIN, {"digest": digest})
    if row is None:
        return None
    parts = {name: {c.key: row[f"{name}.{c.key}"] for c in table.c}
             for name, table in (("t", machine_tokens), ("p", principals), ("r", machine_roles))}
    token = _checked(tx, _TOKENS, parts["t"])
    principal = _checked(tx, "principals", parts["p"])  # as checked: read again if changed meanwhile
    role = _checked(tx, _ROLES, parts["r"])
    return {**token, "session_epoch": principal["session_epoch"], "disabled": principal["disabled"],
            "locked_until": principal["locked_until"], "token_ttl": role["token_ttl"]}


_TOKEN_JOIN = Hot(select(*[c.label(f"{name}.{c.key}") for name, table in (("t", machine_tokens), ("p", principals),
                                                                          ("r", machine_roles)) for c in table.c])
                  .select_from(machine_tokens.join(principals, principals.c.name == _T.principal)
                               .join(machine_roles, _R.principal == _T.principal))
                  .where(_T.id == bindparam("digest")))


def extend_token(tx: Tx, digest: str, expires_at: int) -> None:
    tx.run(update(machine_tokens).where(_T.id == digest).values(expires_at=expires_at))
    integrity.reseal(tx, _TOKENS, _T.id == digest)


def revoke_token(tx: Tx, digest: str, ts: int) -> bool:
    if tx.run(update(machine_tokens).where(and_(_T.id == digest, _T.revoked_at.is_(None)))
              .values(revoked_at=ts)) == 0:
        return False
    integrity.reseal(tx, _TOKENS, _T.id == digest)
    return True


def revoke_tokens_of(tx: Tx, principal: str, ts: int) -> int:
    n = tx.run(update(machine_tokens).where(and_(_T.principal == principal, _T.revoked_at.is_(None)))
               .values(revoked_at=ts))
    if n:
        integrity.reseal(tx, _TOKENS, and_(_T.principal == principal, _T.revoked_at == ts))
    return n


def prune_tokens(tx: Tx, before: int) -> int:
    """Forget tokens that expired or were revoked before ``before``."""
    return integrity.delete(tx, _TOKENS, (_T.expires_at < before)
                            | (and_(_T.revoked_at.is_not(None), _T.revoked_at < before)))
