"""Principals (``principals``): users and services, their roles, password hashes and lock state.

Every row is MACed and checked on read (``integrity``): an edit made in the database file is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select, update

from ..schema import principals
from ..tx import Tx
from . import integrity

_P = principals.c
_T = "principals"


def get_principal(tx: Tx, name: str) -> Mapping[str, Any] | None:
    """The principal's row, or None. Raises ``IntegrityError``, ``Sealed``."""
    row = tx.one(select(principals).where(_P.name == name))
    return None if row is None else integrity.check(tx, _T, [row])[0]


def insert_principal(tx: Tx, **values: Any) -> None:
    tx.run(insert(principals).values(**values))
    integrity.reseal(tx, _T, _P.name == values["name"])


def update_principal(tx: Tx, name: str, **values: Any) -> None:
    """Change columns of an intact row (the unchanged ones are checked first). Raises ``IntegrityError``."""
    get_principal(tx, name)
    tx.run(update(principals).where(_P.name == name).values(**values))
    integrity.reseal(tx, _T, _P.name == name)


def list_principals(tx: Tx) -> list[Mapping[str, Any]]:
    """Every principal, by name. Raises ``IntegrityError``, ``Sealed``."""
    return list(integrity.check(tx, _T, tx.all(select(principals).order_by(_P.name)), whole=True))
