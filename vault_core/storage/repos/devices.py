"""Audit devices (``audit_devices``): configuration and the durable delivery cursor of each."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, delete, insert, select, update

from ..schema import audit_devices
from ..tx import Tx

_D = audit_devices.c


def add_device(tx: Tx, **row: Any) -> None:
    tx.run(insert(audit_devices).values(**row))


def get_device(tx: Tx, name: str) -> Mapping[str, Any] | None:
    return tx.one(select(audit_devices).where(_D.name == name))


def list_devices(tx: Tx) -> list[Mapping[str, Any]]:
    return tx.all(select(audit_devices).order_by(_D.name))


def remove_device(tx: Tx, name: str) -> bool:
    return tx.run(delete(audit_devices).where(_D.name == name)) == 1


def advance(tx: Tx, name: str, from_seq: int, to_seq: int, now: int) -> bool:
    """Move the cursor from ``from_seq`` to ``to_seq`` (only if nobody moved it meanwhile); clear the failure."""
    return tx.run(update(audit_devices).where(and_(_D.name == name, _D.delivered_seq == from_seq))
                  .values(delivered_seq=to_seq, delivered_at=now, failing_since=None, last_error=None)) == 1


def mark_failing(tx: Tx, name: str, now: int, error: str) -> None:
    """Record a failed delivery; ``failing_since`` keeps the first failure of the outage."""
    row = get_device(tx, name)
    if row is not None:
        tx.run(update(audit_devices).where(_D.name == name)
               .values(failing_since=row["failing_since"] or now, last_error=error[:300]))


def mark_ok(tx: Tx, name: str, now: int) -> None:
    """The device answered (caught up or a test): no outage any more."""
    tx.run(update(audit_devices).where(_D.name == name).values(delivered_at=now, failing_since=None,
                                                                last_error=None))


def required_cursors(tx: Tx) -> list[Mapping[str, Any]]:
    """(name, delivered_seq, max_lag_s, failing_since) of every required device (the fail-closed check)."""
    return tx.all(select(_D.name, _D.delivered_seq, _D.max_lag_s, _D.failing_since).where(_D.required.is_(True)))
