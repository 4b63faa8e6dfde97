"""Row MACs and table digests of the protected tables (see crypto/rows.py): sealed as rows are written,
checked as they are read. Only the repositories of those tables call this module.

A read checks each row's MAC, and that the table still matches the digest in the (MACed) state row:
the set of row MACs this process last found consistent is kept with ``tx.seal`` and rescanned only when
the digest moved or a row is not in it, so the steady state costs one HMAC per row read.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, and_, select, update

from ...errors import IntegrityError, Sealed
from ..schema import access_rules, principals, sessions, two_factor, two_factor_roles, wrapped_keys
from ..schema import sso_group_roles, sso_identities, sso_providers
from ..tx import Tx
from . import state as _state

PROTECTED: dict[str, Table] = {t.name: t for t in (principals, access_rules, sessions, wrapped_keys, two_factor,
                                                   two_factor_roles, sso_providers, sso_identities, sso_group_roles)}
# bumped by every store, guarded by nothing but a rotation reminder: left out so a store writes no MAC
_UNSEALED = {"wrapped_keys": frozenset({"encryptions"})}
_COLUMNS = {name: tuple(c.key for c in t.c if c.key != "mac" and c.key not in _UNSEALED.get(name, ()))
            for name, t in PROTECTED.items()}
_KEYS = {name: tuple(c.key for c in t.primary_key.columns) for name, t in PROTECTED.items()}


def _seal(tx: Tx):
    if tx.seal is None:
        raise Sealed("the vault is sealed: unlock it with its master key or passphrase")
    return tx.seal


def _mac(tx: Tx, table: str, row: Mapping[str, Any]) -> bytes:
    return tx.seal.mac(table, [row[c] for c in _COLUMNS[table]])


def _which(table: str, row: Mapping[str, Any]) -> str:
    if table == "sessions":
        return f"a session of {row.get('principal')!r}"  # its id is a hash of a live token: never printed
    return ", ".join(f"{k}={row.get(k)!r}" for k in _KEYS[table])


def check(tx: Tx, table: str, rows: Sequence[Mapping[str, Any]], *, whole: bool = False, fresh: bool = False
          ) -> Sequence[Mapping[str, Any]]:
    """``rows`` of ``table`` if each is intact and the table matches its digest. ``whole``: ``rows`` are the
    whole table, so they must be exactly the rows last found consistent (a deleted deny rule is a change).
    ``fresh`` rescans whatever this process saw before: for a row found *missing*, whose absence must be proven.

    Raises ``IntegrityError`` (edited, forged, re-inserted, deleted or rolled back outside the vault), ``Sealed``.
    """
    seal = _seal(tx)
    for row in rows:
        mac = row["mac"]
        if mac is None or not hmac.compare_digest(bytes(mac), _mac(tx, table, row)):
            raise IntegrityError(f"a {table} row ({_which(table, row)}) fails its integrity check: "
                                 "it was changed outside the vault")
    want = _want(tx, table)
    known = seal.checked.get(table)
    if fresh or known is None or known[0].hex() != want or (
            frozenset(bytes(r["mac"]) for r in rows) != known[1] if whole
            else any(bytes(r["mac"]) not in known[1] for r in rows)):
        # PostgreSQL reads each statement at its own snapshot: a change committed between reading the
        # state row and the MACs looks like a mismatch once; tampering mismatches every time
        for _ in range(3 if tx.backend == "postgresql" else 1):
            macs = _macs(tx, table)
            digest = seal.digest(table, macs)
            if hmac.compare_digest(digest.hex(), want):
                seal.checked[table] = (digest, macs)
                return rows
            _state.get_state(tx)
            want = _want(tx, table)
        raise IntegrityError(f"the {table} table does not match its digest: a row was deleted, "
                             "re-inserted or restored from an older copy outside the vault")
    return rows


def _want(tx: Tx, table: str) -> str:
    """The digest the state row holds for ``table`` (a table never written holds the empty set's)."""
    return _state.digests(tx).get(table) or bytes(32).hex()


def _macs(tx: Tx, table: str) -> frozenset[bytes]:
    return frozenset(bytes(m) for (m,) in tx.tuples(select(PROTECTED[table].c.mac)) if m is not None)


def reseal(tx: Tx, table: str, where: Any = None) -> None:
    """MAC the rows of ``table`` matching ``where`` (all when None), just inserted or changed in ``tx``,
    and advance the table's digest by them alone. Raises ``Sealed``.
    """
    _seal(tx)
    _state.get_state(tx, lock=True)  # before reading rows: a concurrent writer's are then committed
    t = PROTECTED[table]
    stmt = select(t) if where is None else select(t).where(where)
    removed, added = [], []
    for row in tx.all(stmt):
        key = and_(*(t.c[k] == row[k] for k in _KEYS[table]))
        mac = _mac(tx, table, row)
        tx.run(update(t).where(key).values(mac=mac))
        if row["mac"] is not None:
            removed.append(bytes(row["mac"]))  # the row as it was: its old MAC leaves the digest
        added.append(mac)
    _advance(tx, table, removed, added)


def delete(tx: Tx, table: str, where: Any) -> int:
    """Delete the rows of ``table`` matching ``where``, taking their MACs out of its digest; returns how many.

    Raises ``Sealed``.
    """
    _seal(tx)
    _state.get_state(tx, lock=True)
    t = PROTECTED[table]
    gone = [bytes(m) for (m,) in tx.tuples(select(t.c.mac).where(where)) if m is not None]
    n = tx.run(t.delete().where(where))
    if n:
        _advance(tx, table, gone, [])
    return n


def _advance(tx: Tx, table: str, removed: list[bytes], added: list[bytes]) -> None:
    want = bytes.fromhex(_want(tx, table))
    digest = tx.seal.moved(want, table, removed, added)
    _state.set_digest(tx, table, digest)
    tx.seal.checked.pop(table, None)  # the next read rescans once (a rollback leaves the old digest)


def seal_all(tx: Tx) -> None:
    """MAC every protected row and the state row: a vault upgraded to row MACs by this process."""
    _state.seal_in(tx)
    for table in PROTECTED:
        reseal(tx, table)


def problems(tx: Tx) -> list[str]:
    """What fails in the state row and the protected tables, each named (empty when all is intact).

    Raises ``Sealed``.
    """
    _seal(tx)
    try:
        _state.get_state(tx)
    except IntegrityError as exc:
        return [str(exc)]
    found = []
    for table, t in PROTECTED.items():
        tx.seal.checked.pop(table, None)  # a full check: nothing taken from earlier ones
        try:
            check(tx, table, tx.all(select(t)), whole=True)
        except IntegrityError as exc:
            found.append(str(exc))
    return found
