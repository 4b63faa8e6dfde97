"""Wrapped keys (``wrapped_keys``): the data key terms and the audit/cookie keys, sealed by the master key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update

from ..schema import wrapped_keys
from ..tx import Hot, Tx
from . import integrity

_W = wrapped_keys.c
_T = "wrapped_keys"
_COUNT_ENCRYPTIONS = Hot(update(wrapped_keys).where(and_(_W.purpose == "data", _W.term == bindparam("term")))
                         .values(encryptions=_W.encryptions + bindparam("n")))


def wrapped_keys_of(tx: Tx, purpose: str | None = None) -> list[Mapping[str, Any]]:
    """Every wrapped key (of one ``purpose``), by purpose and term; checked while unlocked (``integrity``:
    the unlock itself reads them before it has the row key, then checks them with ``check_keys``).

    Raises ``IntegrityError``.
    """
    stmt = select(wrapped_keys).order_by(_W.purpose, _W.term)
    if purpose is not None:
        stmt = stmt.where(_W.purpose == purpose)
    rows = tx.all(stmt)
    return list(integrity.check(tx, _T, rows, whole=purpose is None)) if tx.seal is not None else rows


def check_keys(tx: Tx) -> None:
    """Check every key-term record against its MAC and the table's digest. Raises ``IntegrityError``."""
    integrity.check(tx, _T, tx.all(select(wrapped_keys)), whole=True)


def put_wrapped_key(tx: Tx, purpose: str, term: int, wrapped: bytes, created_at: int) -> None:
    tx.run(insert(wrapped_keys).values(purpose=purpose, term=term, wrapped=wrapped, created_at=created_at,
                                       encryptions=0))
    integrity.reseal(tx, _T, and_(_W.purpose == purpose, _W.term == term))


def rewrap_key(tx: Tx, purpose: str, term: int, wrapped: bytes) -> None:
    tx.run(update(wrapped_keys).where(and_(_W.purpose == purpose, _W.term == term)).values(wrapped=wrapped))
    integrity.reseal(tx, _T, and_(_W.purpose == purpose, _W.term == term))


def count_encryptions(tx: Tx, term: int, n: int = 1) -> None:
    tx.run(_COUNT_ENCRYPTIONS, {"term": term, "n": n})


def data_terms(tx: Tx) -> list[Mapping[str, Any]]:
    return wrapped_keys_of(tx, "data")


def retire_term(tx: Tx, term: int, now: int) -> None:
    tx.run(update(wrapped_keys).where(and_(_W.purpose == "data", _W.term == term, _W.retired_at.is_(None)))
           .values(retired_at=now))
    integrity.reseal(tx, _T, and_(_W.purpose == "data", _W.term == term))
