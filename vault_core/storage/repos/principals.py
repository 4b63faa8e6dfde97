"""Principals (``principals``): users and services, their roles, password hashes and lock state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select, update

from ..schema import principals
from ..tx import Tx

_P = principals.c


def get_principal(tx: Tx, name: str) -> Mapping[str, Any] | None:
    return tx.one(select(principals).where(_P.name == name))


def insert_principal(tx: Tx, **values: Any) -> None:
    tx.run(insert(principals).values(**values))


def update_principal(tx: Tx, name: str, **values: Any) -> None:
    tx.run(update(principals).where(_P.name == name).values(**values))


def list_principals(tx: Tx) -> list[Mapping[str, Any]]:
    return tx.all(select(principals).order_by(_P.name))
