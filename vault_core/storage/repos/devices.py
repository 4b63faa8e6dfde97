"""Audit devices (``audit_devices``): configuration and the durable delivery cursor of each.

Rows are MACed and checked on read (``integrity``): a required device made optional, a path moved or a
cursor pushed past undelivered rows in the database file is refused. Only the health notes
(``delivered_at``, ``failing_since``, ``last_error``) are left out of the MAC.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, insert, select, update

from ..schema import audit_devices
from ..tx import Tx
from . import integrity

_D = audit_devices.c


_T = "audit_devices"


def add_device(tx: Tx, **row: Any) -> None:
    tx.run(insert(audit_devices).values(**row))
    integrity.reseal(tx, _T, _D.name == row["name"])


def get_device(tx: Tx, name: str) -> Mapping[str, Any] | None:
    """Raises ``IntegrityError`` (the row was changed outside the vault)."""
    row = tx.one(select(audit_devices).where(_D.name == name))
    return None if row is None else integrity.check(tx, _T, [row])[0]


def list_devices(tx: Tx) -> list[Mapping[str, Any]]:
    """Every device. Raises ``IntegrityError`` (a row changed, added or removed outside the vault)."""
    return list(integrity.check(tx, _T, tx.all(select(audit_devices).order_by(_D.name)), whole=True))


def remove_device(tx: Tx, name: str) -> bool:
    return integrity.delete(tx, _T, _D.name == name) == 1


def advance(tx: Tx, name: str, from_seq: int, to_seq: int, now: int) -> bool:
    """Move the cursor from ``from_seq`` to ``to_seq`` (only if nobody moved it meanwhile); clear the failure."""
    if tx.run(update(audit_devices).where(and_(_D.name == name, _D.delivered_seq == from_seq))
              .values(delivered_seq=to_seq, delivered_at=now, failing_since=None, last_error=None)) != 1:
        return False
    integrity.reseal(tx, _T, _D.name == name)
    return True


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
    """(name, delivered_seq, max_lag_s, failing_since) of every required device (the fail-closed check),
    from the whole table, checked: a required device flagged optional in the file still counts.
    Raises ``IntegrityError``."""
    return [{k: d[k] for k in ("name", "delivered_seq", "max_lag_s", "failing_since")}
            for d in list_devices(tx) if d["required"]]
