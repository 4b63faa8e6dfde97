"""Secret versions (``secret_versions``): sealed values, their state and key term.

States: current, previous, pending (a staged rotation), old.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update

from ..schema import secret_versions, secrets
from ..tx import Hot, Tx

_S, _V = secrets.c, secret_versions.c
_COLUMNS = tuple(c.key for c in _V)
_INSERT = Hot(insert(secret_versions).values({c: bindparam(c) for c in _COLUMNS}))
_SET_STATE = Hot(update(secret_versions).where(and_(_V.secret_id == bindparam("sid"), _V.version == bindparam("ver")))
                 .values(state=bindparam("state")))
# "keep" holds one or two versions (current, and the pending one a staged rotation promotes)
_DEMOTE = Hot(update(secret_versions)
              .where(and_(_V.secret_id == bindparam("sid"), _V.version != bindparam("k1"),
                          _V.version != bindparam("k2"), or_(_V.state == "current", _V.state == "previous")))
              .values(state="old"))
_PRUNE = Hot(delete(secret_versions).where(and_(_V.secret_id == bindparam("sid"), _V.version < bindparam("below"),
                                                _V.version != bindparam("k1"), _V.version != bindparam("k2"))))
_REWRITE = (update(secret_versions)
            .where(and_(_V.secret_id == bindparam("sid"), _V.version == bindparam("ver"),
                        _V.key_term == bindparam("old_term")))
            .values(ciphertext=bindparam("blob"), key_term=bindparam("new_term")))


def _keep(keep: Sequence[int]) -> dict[str, int]:
    if not 1 <= len(keep) <= 2:
        raise ValueError("keep one or two versions")
    return {"k1": keep[0], "k2": keep[-1]}


def insert_version(tx: Tx, **values: Any) -> None:
    tx.run(_INSERT, {c: values[c] for c in _COLUMNS})


def get_version(tx: Tx, secret_id: str, version: int) -> Mapping[str, Any] | None:
    return tx.one(select(secret_versions).where(and_(_V.secret_id == secret_id, _V.version == version)))


def version_blob(tx: Tx, secret_id: str, version: int) -> bytes | None:
    return tx.scalar(select(_V.ciphertext).where(and_(_V.secret_id == secret_id, _V.version == version)))


def set_version_state(tx: Tx, secret_id: str, version: int, state: str) -> None:
    tx.run(_SET_STATE, {"sid": secret_id, "ver": version, "state": state})


def demote_versions(tx: Tx, secret_id: str, keep: Sequence[int]) -> None:
    """Mark every current/previous version but ``keep`` (one or two) as old."""
    tx.run(_DEMOTE, {"sid": secret_id, **_keep(keep)})


def prune_versions(tx: Tx, secret_id: str, below: int, keep: Sequence[int] = ()) -> None:
    """Destroy versions older than ``below`` except those in ``keep`` (one or two)."""
    tx.run(_PRUNE, {"sid": secret_id, "below": below, **_keep(keep or [0])})


def list_versions(tx: Tx, secret_id: str) -> list[Mapping[str, Any]]:
    return tx.all(select(_V.version, _V.state, _V.created_at, _V.created_by, _V.key_term)
                  .where(_V.secret_id == secret_id).order_by(_V.version.desc()))


def count_versions(tx: Tx) -> int:
    """Every stored version of every secret."""
    return tx.scalar(select(func.count()).select_from(secret_versions))


def version_at(tx: Tx, offset: int) -> Mapping[str, Any] | None:
    """The version at ``offset`` in (secret_id, version) order, with what its AAD needs (a backup's sample)."""
    return tx.one(select(_S.environment, _S.id, _S.name, _S.salt, _V.version, _V.ciphertext)
                  .select_from(secret_versions.join(secrets, _S.id == _V.secret_id))
                  .order_by(_V.secret_id, _V.version).offset(offset).limit(1))


# -- pending versions (staged rotation) -------------------------------------------------------------
def pending_versions(tx: Tx, secret_id: str) -> list[Mapping[str, Any]]:
    return tx.all(select(_V.version, _V.created_at, _V.ciphertext)
                  .where(and_(_V.secret_id == secret_id, _V.state == "pending")))


def delete_pending(tx: Tx, secret_id: str, version: int, ciphertext: bytes | None = None) -> bool:
    """Delete one PENDING version (only the one we staged, when ``ciphertext`` is given)."""
    cond = [_V.secret_id == secret_id, _V.version == version, _V.state == "pending"]
    if ciphertext is not None:
        cond.append(_V.ciphertext == ciphertext)
    return tx.run(delete(secret_versions).where(and_(*cond))) == 1


# -- re-encryption onto a newer key term ----------------------------------------------------------------
def versions_below(tx: Tx, term: int, limit: int) -> list[Mapping[str, Any]]:
    """Versions sealed under a term older than ``term``, with what their AAD and key need."""
    return tx.all(select(_V.secret_id, _S.id, _V.version, _V.ciphertext, _V.key_term, _S.environment, _S.name,
                         _S.salt)
                  .select_from(secret_versions.join(secrets, _S.id == _V.secret_id))
                  .where(_V.key_term < term).order_by(_V.key_term, _V.secret_id, _V.version).limit(limit))


def count_below(tx: Tx, term: int) -> int:
    return tx.scalar(select(func.count()).select_from(secret_versions).where(_V.key_term < term))


def versions_per_term(tx: Tx) -> dict[int, int]:
    return {r[0]: r[1] for r in tx.tuples(select(_V.key_term, func.count()).group_by(_V.key_term))}


def rewrite_versions(tx: Tx, rows: list[dict[str, Any]]) -> int:
    """Replace ciphertexts (one executemany), each only if still sealed under its ``old_term``.

    ``rows`` hold sid, ver, old_term, blob, new_term; returns how many were replaced.
    """
    return tx.run(_REWRITE, rows) if rows else 0
