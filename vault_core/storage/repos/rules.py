"""Access rules (``access_rules``), MACed and checked on read like every protected table (``integrity``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select

from ..schema import access_rules
from ..tx import Tx
from . import integrity

_R = access_rules.c
_T = "access_rules"


def list_rules(tx: Tx) -> list[Mapping[str, Any]]:
    """Every rule, by id. Raises ``IntegrityError``, ``Sealed``."""
    return list(integrity.check(tx, _T, tx.all(select(access_rules).order_by(_R.id)), whole=True))


def insert_rule(tx: Tx, **values: Any) -> int:
    rule_id = tx.insert_id(insert(access_rules).values(**values))
    integrity.reseal(tx, _T, _R.id == rule_id)
    return rule_id


def get_rule(tx: Tx, rule_id: int) -> Mapping[str, Any] | None:
    """The rule, or None. Raises ``IntegrityError``, ``Sealed``."""
    row = tx.one(select(access_rules).where(_R.id == rule_id))
    return None if row is None else integrity.check(tx, _T, [row])[0]


def delete_rule(tx: Tx, rule_id: int) -> None:
    integrity.delete(tx, _T, _R.id == rule_id)


def delete_rules_of_secret(tx: Tx, secret_id: str) -> None:
    integrity.delete(tx, _T, _R.secret_id == secret_id)
