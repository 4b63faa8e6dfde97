"""The single ``vault_state`` row: vault id, owner, rules version, audit chain head, table digests.

The row carries ``state_mac`` over all of that (crypto/rows.py), checked at every read while the vault
is unlocked, so neither the chain head nor the digests of the protected tables can be edited or rolled
back alone. Every function that changes the row keeps ``tx.state`` (the row as this transaction sees
it) and the MAC up to date.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from ...errors import IntegrityError
from ..schema import vault_state
from ..tx import Hot, Tx

_S = vault_state.c
_STATE = Hot(select(vault_state).where(_S.id == 1))
_STATE_LOCKED = Hot(select(vault_state).where(_S.id == 1).with_for_update())
# change_seq (a cache hint) is left out: a MAC over it would break the vault for a release that predates it
_MACED = ("vault_id", "created_at", "owner", "rules_version", "row_digests", "audit_seq", "audit_mac")
_WRITE = Hot(update(vault_state).where(_S.id == 1).values(
    rules_version=bindparam("s_rules"), row_digests=bindparam("s_digests"), audit_seq=bindparam("s_seq"),
    audit_mac=bindparam("s_mac"), state_mac=bindparam("s_state_mac"), change_seq=bindparam("s_change")))


def get_state(tx: Tx, *, lock: bool = False) -> Mapping[str, Any] | None:
    """The state row, checked against its MAC when the vault is unlocked; ``lock`` serialises writers on
    PostgreSQL (SQLite's BEGIN IMMEDIATE already does). Raises ``IntegrityError``."""
    tx.flush()  # a deferred write of this transaction first: the row read back is then its latest
    return checked(tx, tx.one(_STATE_LOCKED if lock and tx.backend == "postgresql" else _STATE))


def checked(tx: Tx, row: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``row`` (the state row, read here or with another query) once its MAC holds; it becomes ``tx.state``.

    Raises ``IntegrityError``.
    """
    if row is not None and tx.seal is not None:
        stored, known, values = row["state_mac"], tx.seal.state, tuple(row[c] for c in _MACED)
        # the row this process wrote or checked last needs no second HMAC (a valid pair stays valid)
        if stored is None or known is None or known[1] != bytes(stored) or known[0] != values:
            if stored is None or not hmac.compare_digest(bytes(stored), _mac(tx, row)):
                raise IntegrityError("the vault_state row fails its integrity check: its audit chain head, "
                                     "rules version or table digests were changed outside the vault")
            tx.seal.state = (values, bytes(stored))
    tx.state = None if row is None else dict(row)
    return row


def unchecked_state(tx: Tx) -> Mapping[str, Any] | None:
    """The state row as stored, MAC unchecked: only for ``verify``, which reports a bad MAC itself."""
    return tx.one(_STATE)


def has_mac(tx: Tx) -> bool:
    """Whether the state row carries its MAC (not yet: a vault upgraded to row MACs and not unlocked since)."""
    return tx.scalar(select(_S.state_mac).where(_S.id == 1)) is not None


def _mac(tx: Tx, state: Mapping[str, Any]) -> bytes:
    return tx.seal.state_mac(tuple(state[c] for c in _MACED[:5]), state["audit_seq"], state["audit_mac"])


def current(tx: Tx) -> dict[str, Any]:
    """This transaction's view of the row, read (locked) if it has not been read yet."""
    if tx.state is None:
        get_state(tx, lock=True)
    return tx.state


def next_change(seq: int | None) -> int:
    """The change counter after one more change: past ``seq`` and past the clock in microseconds, so a
    restored (older) state row never brings back a value a cache has already seen."""
    return max((seq or 0) + 1, time.time_ns() // 1000)


def _write(tx: Tx, state: dict[str, Any], *, defer: bool = False) -> None:
    """Write ``state`` (MACed) now, or, with ``defer``, once before the commit: digests moved by a change
    are then written with the audit head that change moves anyway."""
    tx.state = state
    if defer:
        tx.defer(lambda: _write(tx, tx.state))
        return
    tx.defer(None)
    if tx.change and not tx.changed:  # once per change transaction, in the row it writes anyway
        state["change_seq"], tx.changed = next_change(state.get("change_seq")), True
    state["state_mac"] = None
    if tx.seal is not None:
        state["state_mac"] = _mac(tx, state)
        tx.seal.state = (tuple(state[c] for c in _MACED), state["state_mac"])
    tx.run(_WRITE, {"s_rules": state["rules_version"], "s_digests": state["row_digests"],
                    "s_seq": state["audit_seq"], "s_mac": state["audit_mac"], "s_state_mac": state["state_mac"],
                    "s_change": state["change_seq"] or 0})
    tx.state = state


def init_state(tx: Tx, **values: Any) -> None:
    """Create the row (a new vault), MACed when ``tx.seal`` is set."""
    tx.run(insert(vault_state).values(id=1, **values))
    state = {**{c.key: None for c in vault_state.c}, "id": 1, **values}
    _write(tx, state)


def seal_in(tx: Tx) -> None:
    """Give a state row without a MAC (a vault upgraded to row MACs) its MAC, as it stands."""
    seal, tx.seal = tx.seal, None
    try:
        row = get_state(tx, lock=True)
    finally:
        tx.seal = seal
    _write(tx, dict(row))


def digests(tx: Tx) -> dict[str, str]:
    """table -> hex digest of its row MACs, as the (checked) state row holds them (do not mutate: the
    parse of the last text seen is shared, as every read of a protected row asks for it)."""
    global _parsed
    text = current(tx)["row_digests"] or "{}"
    found = _parsed
    if found[0] != text:
        found = _parsed = (text, json.loads(text))
    return found[1]


_parsed: tuple[str, dict[str, str]] = ("{}", {})


def set_digest(tx: Tx, table: str, digest: bytes) -> None:
    """Record the new digest of ``table`` (after a change of its rows in this transaction)."""
    state = dict(current(tx))  # read locked by the caller (integrity) before it read the rows
    found = dict(digests(tx))
    found[table] = digest.hex()
    state["row_digests"] = json.dumps(found, sort_keys=True)
    _write(tx, state, defer=True)


def advance_head(tx: Tx, seq: int, mac: bytes) -> None:
    """Move the audit chain head to row ``seq`` (in the transaction that inserted it)."""
    state = dict(current(tx))
    state["audit_seq"], state["audit_mac"] = seq, bytes(mac)
    _write(tx, state)


def bump_rules_version(tx: Tx) -> int:
    """Count one change of the rules or principals (every process recompiles its snapshot)."""
    get_state(tx, lock=True)
    state = dict(tx.state)
    state["rules_version"] += 1
    _write(tx, state)
    return state["rules_version"]


def rules_version(tx: Tx) -> int:
    return tx.scalar(select(_S.rules_version).where(_S.id == 1))
