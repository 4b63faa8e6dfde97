"""Access rules (``access_rules``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, select

from ..schema import access_rules
from ..tx import Tx

_R = access_rules.c


def list_rules(tx: Tx) -> list[Mapping[str, Any]]:
    return tx.all(select(access_rules).order_by(_R.id))


def insert_rule(tx: Tx, **values: Any) -> int:
    return tx.insert_id(insert(access_rules).values(**values))


def get_rule(tx: Tx, rule_id: int) -> Mapping[str, Any] | None:
    return tx.one(select(access_rules).where(_R.id == rule_id))


def delete_rule(tx: Tx, rule_id: int) -> None:
    tx.run(delete(access_rules).where(_R.id == rule_id))


def delete_rules_of_secret(tx: Tx, secret_id: str) -> None:
    tx.run(delete(access_rules).where(_R.secret_id == secret_id))
