"""The single ``vault_state`` row: vault id, owner, rules version, audit chain head."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select, update

from ..schema import vault_state
from ..tx import Hot, Tx

_STATE = Hot(select(vault_state).where(vault_state.c.id == 1))
_STATE_LOCKED = Hot(select(vault_state).where(vault_state.c.id == 1).with_for_update())


def get_state(tx: Tx, *, lock: bool = False) -> Mapping[str, Any] | None:
    """The state row; ``lock`` serialises writers on PostgreSQL (SQLite's BEGIN IMMEDIATE already does)."""
    return tx.one(_STATE_LOCKED if lock and tx.backend == "postgresql" else _STATE)


def init_state(tx: Tx, **values: Any) -> None:
    tx.run(insert(vault_state).values(id=1, **values))


def bump_rules_version(tx: Tx) -> int:
    """Count one change of the rules or principals (every process recompiles its snapshot)."""
    tx.run(update(vault_state).where(vault_state.c.id == 1).values(rules_version=vault_state.c.rules_version + 1))
    return rules_version(tx)


def rules_version(tx: Tx) -> int:
    return tx.scalar(select(vault_state.c.rules_version).where(vault_state.c.id == 1))
