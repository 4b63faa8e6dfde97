"""Row MACs and table digests of the protected tables (see crypto/rows.py): sealed as rows are written,
checked as they are read. Only the repositories of those tables call this module.

A read checks each row's MAC, and that the table still matches the digest in the (MACed) state row:
the set of row MACs this process last found consistent is kept with ``tx.seal``, advanced by this
process's own changes, and rescanned only when another process moved the digest or a row is not in it.
A row whose exact content was verified before costs no HMAC (``RowSeal.verified``).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, and_, select, update

from ...errors import IntegrityError, Sealed
from ..schema import (access_rules, audit_devices, audit_log, machine_roles, machine_secret_ids, machine_tokens,
                      principals, secrets, sessions, sso_group_roles, sso_identities, sso_providers, two_factor,
                      two_factor_roles, wrapped_keys)
from ..tx import Tx
from . import state as _state

# the schema revision that gave each table its MAC: a vault this process upgraded from before it seals
# those tables at its next unlock (service/creation.check_rows), audited
SINCE: dict[str, tuple[Table, ...]] = {
    "0009": (principals, access_rules, sessions, wrapped_keys, two_factor, two_factor_roles),
    "0010": (secrets, machine_roles, machine_secret_ids, machine_tokens, audit_devices),
}
_BORN_SEALED = (sso_providers, sso_identities, sso_group_roles)  # created with their MACs (0012): nothing to seal
PROTECTED: dict[str, Table] = {t.name: t for tables in (*SINCE.values(), _BORN_SEALED) for t in tables}
_UNSEALED = {
    "wrapped_keys": frozenset({"encryptions"}),  # bumped by every store, guards nothing but a rotation reminder
    "audit_devices": frozenset({"delivered_at", "failing_since", "last_error"}),  # health notes, not decisions
}
_COLUMNS = {name: tuple(c.key for c in t.c if c.key != "mac" and c.key not in _UNSEALED.get(name, ()))
            for name, t in PROTECTED.items()}
_KEYS = {name: tuple(c.key for c in t.primary_key.columns) for name, t in PROTECTED.items()}


def _seal(tx: Tx):
    if tx.seal is None:
        raise Sealed("the vault is sealed: unlock it with its master key or passphrase")
    return tx.seal


def _values(table: str, row: Mapping[str, Any]) -> tuple:
    return tuple(row[c] for c in _COLUMNS[table])


def _mac(tx: Tx, table: str, row: Mapping[str, Any]) -> bytes:
    return tx.seal.mac(table, _values(table, row))


def sealed(tx: Tx, table: str, *rows: dict[str, Any]) -> dict[str, Any]:
    """Each of ``rows`` (every column of a new row of ``table``) given its MAC, the table's digest advanced
    by them: for INSERTs in this same transaction (a bulk load seals all its rows at once). Returns the
    first. Raises ``Sealed``."""
    _seal(tx)
    _locked(tx)
    for row in rows:
        row["mac"] = _mac(tx, table, row)
    _advance(tx, table, [], [(_key(table, row), row["mac"]) for row in rows])
    return rows[0]


_HASHED_KEYS = {"sessions": "a session", "machine_tokens": "a token", "machine_secret_ids": "a secret id"}


def _which(table: str, row: Mapping[str, Any]) -> str:
    if table in _HASHED_KEYS:  # the key is a hash of a live credential: never printed
        return f"{_HASHED_KEYS[table]} of {row.get('principal')!r}"
    return ", ".join(f"{k}={row.get(k)!r}" for k in _KEYS[table])


def check(tx: Tx, table: str, rows: Sequence[Mapping[str, Any]], *, whole: bool = False, fresh: bool = False,
          again: Callable[[], Sequence[Mapping[str, Any]]] | None = None) -> Sequence[Mapping[str, Any]]:
    """``rows`` of ``table`` if each is intact and the table matches its digest. ``whole``: ``rows`` are the
    whole table, so they must be exactly the rows last found consistent (a deleted deny rule is a change).
    ``fresh`` rescans whatever this process saw before: for a row found *missing*, whose absence must be proven.
    ``again`` runs the caller's query once more: on PostgreSQL, rows read before another process's change
    committed are replaced by what it returns under the writers' lock (a row gone may then be missing), so
    columns the query joined in (a ciphertext) come from the same reading as the row. Without it, rows
    holding only the table's columns are read again by key.

    Raises ``IntegrityError`` (edited, forged, re-inserted, deleted or rolled back outside the vault), ``Sealed``.
    """
    seal = _seal(tx)
    verified = seal.verified
    for row in rows:
        mac, values = row["mac"], _values(table, row)
        if mac is not None and verified.get(mac := bytes(mac)) == values:
            continue  # this exact content passed its MAC before
        if mac is None or not hmac.compare_digest(mac, seal.mac(table, values)):
            raise IntegrityError(f"a {table} row ({_which(table, row)}) fails its integrity check: "
                                 "it was changed outside the vault")
        if len(verified) >= _VERIFIED_MAX:
            verified.clear()
        verified[mac] = values
    want = _want(tx, table)
    known = seal.checked.get(table)
    if not fresh and known is not None and known[0].hex() != want and table in _CHANGED:
        known = _catch_up(tx, table, known, want)
    if fresh or known is None or known[0].hex() != want or not _consistent(table, rows, known[1], whole):
        pg = tx.backend == "postgresql"
        if pg:
            # each PostgreSQL statement reads at its own snapshot: with the state row locked, no writer can
            # commit a digest move between it and the MACs (writers lock it before they seal)
            _state.get_state(tx, lock=True)
            want = _want(tx, table)
        macs = _macs(tx, table)
        digest = seal.digest(table, macs.values())
        if hmac.compare_digest(digest.hex(), want):
            seal.checked[table] = (digest, macs, _seq(tx))
            if _consistent(table, rows, macs, whole):
                return rows
            # the table is whole, yet these rows are not in it: forged, or (PostgreSQL) read before a change
            # that committed since; read again under the lock, they must be in it now
            fresh_rows = (again() if again is not None else _read_again(tx, table, rows, whole)) if pg else None
            if fresh_rows is not None and _consistent(table, fresh_rows, macs, whole):
                return check(tx, table, fresh_rows)
        raise IntegrityError(f"the {table} table does not match its digest: a row was deleted, "
                             "re-inserted or restored from an older copy outside the vault")
    return rows


def _read_again(tx: Tx, table: str, rows: Sequence[Mapping[str, Any]], whole: bool) -> list[dict[str, Any]] | None:
    """``rows`` as the table holds them now; ``whole``: the table again, in key order (every caller of a
    whole check orders by the key). None when a row is gone, or carries columns of another table (a join's,
    which only the caller's own query can bring up to date: ``check(again=)``)."""
    t = PROTECTED[table]
    if any(not set(r.keys()) <= set(t.c.keys()) for r in rows):
        return None
    if whole:
        return [r for _, r in sorted(((_key(table, r), r) for r in tx.all(select(t))), key=lambda kr: kr[0])]
    out = []
    for r in rows:
        row = tx.one(select(t).where(and_(*(t.c[k] == r[k] for k in _KEYS[table]))))
        if row is None:
            return None
        out.append(row)
    return out


def _key(table: str, row: Mapping[str, Any]) -> tuple:
    return tuple(row[k] for k in _KEYS[table])


def _consistent(table: str, rows: Sequence[Mapping[str, Any]], macs: dict[tuple, bytes], whole: bool) -> bool:
    """Whether each of ``rows`` is the row of its key in ``macs`` (and, ``whole``, no other row is)."""
    if whole and len(rows) != len(macs):
        return False
    return all(macs.get(_key(table, r)) == bytes(r["mac"]) for r in rows)


def _seq(tx: Tx) -> int:
    return _state.current(tx)["audit_seq"]


def _catch_up(tx: Tx, table: str, known: tuple, want: str) -> tuple:
    """``known`` brought to ``want`` by re-reading only the rows other processes changed since it (their
    keys from the audit tail), when the result matches ``want``; else ``known`` (the caller rescans). The tail
    is a hint, never trusted: a row missed or tampered with leaves a mismatch, and the full rescan decides."""
    digest, macs, at = known
    keys = _CHANGED[table](tx, at, _seq(tx))
    if keys is None:
        return known
    t = PROTECTED[table]
    rows = tx.all(select(t).where(t.c[_KEYS[table][0]].in_([k[0] for k in keys]))) if keys else []
    for row in rows:
        if row["mac"] is None or not hmac.compare_digest(bytes(row["mac"]), _mac(tx, table, row)):
            return known
    removed = [(k, macs[k]) for k in keys if k in macs]
    added = [(_key(table, r), bytes(r["mac"])) for r in rows]
    moved = tx.seal.moved(digest, table, [m for _, m in removed], [m for _, m in added])
    if moved.hex() != want:
        return known
    for k, _ in removed:  # in place, as ``_advance`` does: a copy of a big table's view costs more
        macs.pop(k, None)
    macs.update(added)
    caught = tx.seal.checked[table] = (moved, macs, _seq(tx))
    return caught


def _changed_secrets(tx: Tx, after: int, upto: int) -> list[tuple] | None:
    """Keys of the secrets named by audit rows ``after`` < seq <= ``upto`` other than reads; None when the
    tail is too long to be cheaper than a rescan."""
    if upto - after > _TAIL_MAX:
        return None
    a = audit_log.c
    ids = tx.tuples(select(a.secret_id).distinct().where(
        a.seq > after, a.seq <= upto, a.secret_id.is_not(None), a.operation != "read").limit(_CHANGED_MAX + 1))
    return None if len(ids) > _CHANGED_MAX else [(i,) for (i,) in ids]


_TAIL_MAX, _CHANGED_MAX = 200_000, 2_000
# tables big enough that another process's change is caught up from the audit tail instead of a rescan
_CHANGED = {"secrets": _changed_secrets}


_VERIFIED_MAX = 50_000  # row contents remembered as verified (a MAC names its table: no collisions across)


def _want(tx: Tx, table: str) -> str:
    """The digest the state row holds for ``table`` (a table never written holds the empty set's)."""
    return _state.digests(tx).get(table) or bytes(32).hex()


def _macs(tx: Tx, table: str) -> dict[tuple, bytes]:
    """key -> MAC of every row of ``table`` (rows without a MAC left out: they fail the digest)."""
    t = PROTECTED[table]
    n = len(_KEYS[table])
    return {tuple(r[:n]): bytes(r[n]) for r in tx.tuples(select(*(t.c[k] for k in _KEYS[table]), t.c.mac))
            if r[n] is not None}


def reseal(tx: Tx, table: str, where: Any = None, *, rows: Sequence[Mapping[str, Any]] | None = None) -> None:
    """MAC the rows of ``table`` matching ``where`` (all when None), just inserted or changed in ``tx``
    (or ``rows``, those rows as an ``UPDATE ... RETURNING`` in this transaction gave them, old MAC included),
    and advance the table's digest by them alone. Raises ``Sealed``.
    """
    _seal(tx)
    _locked(tx)  # before reading rows: a concurrent writer's are then committed
    t = PROTECTED[table]
    if rows is None:
        rows = tx.all(select(t) if where is None else select(t).where(where))
    removed, added = [], []
    for row in rows:
        key = and_(*(t.c[k] == row[k] for k in _KEYS[table]))
        mac = _mac(tx, table, row)
        tx.run(update(t).where(key).values(mac=mac))
        if row["mac"] is not None:
            removed.append((_key(table, row), bytes(row["mac"])))  # the row as it was leaves the digest
        added.append((_key(table, row), mac))
    _advance(tx, table, removed, added)


def delete(tx: Tx, table: str, where: Any) -> int:
    """Delete the rows of ``table`` matching ``where``, taking their MACs out of its digest; returns how many.

    Raises ``Sealed``.
    """
    _seal(tx)
    _locked(tx)
    t = PROTECTED[table]
    n_keys = len(_KEYS[table])
    gone = [(tuple(r[:n_keys]), bytes(r[n_keys]))
            for r in tx.tuples(select(*(t.c[k] for k in _KEYS[table]), t.c.mac).where(where)) if r[n_keys] is not None]
    n = tx.run(t.delete().where(where))
    if n:
        _advance(tx, table, gone, [])
    return n


def _locked(tx: Tx) -> None:
    """Hold the writers' lock on the state row: SQLite's BEGIN IMMEDIATE already does, once it is read."""
    if tx.state is None or tx.backend == "postgresql":
        _state.get_state(tx, lock=True)


def _advance(tx: Tx, table: str, removed: list[tuple[tuple, bytes]], added: list[tuple[tuple, bytes]]) -> None:
    """Move ``table``'s digest by the rows (key, MAC) ``removed`` and ``added`` in this transaction."""
    before = bytes.fromhex(_want(tx, table))
    digest = tx.seal.moved(before, table, [m for _, m in removed], [m for _, m in added])
    _state.set_digest(tx, table, digest)
    checked = tx.seal.checked
    known = checked.get(table)
    gone = {k for k, _ in removed}
    if (known is not None and known[0] == before and all(known[1].get(k) == m for k, m in removed)
            and not any(k in known[1] and k not in gone for k, _ in added)):
        # this process's view follows its own change without a rescan, as long as the rows it touched are
        # the ones it knew (a key reused after a row deleted in the file is not); should the transaction roll
        # back, the stored digest is still ``before``, differs from ``digest``, and the next read rescans
        macs = known[1]
        for k in gone:
            del macs[k]
        macs.update(added)
        checked[table] = (digest, macs, _seq(tx))
    else:
        checked.pop(table, None)


def seal_all(tx: Tx, since: str = "") -> list[str]:
    """MAC every row of the tables given MACs by a revision after ``since`` (all: "") and, from nothing, the
    state row: a vault upgraded to row MACs by this process. Returns the tables sealed. Raises ``Sealed``."""
    if since < "0009":
        _state.seal_in(tx)
    names = [t.name for revision, tables in SINCE.items() if revision > since for t in tables]
    for table in names:
        _state.set_digest(tx, table, bytes(32))  # from nothing: a digest kept from before a downgrade is moot
        tx.seal.checked.pop(table, None)
        reseal(tx, table)
    return names


def seal_upgraded(tx: Tx, since: str | None) -> list[str]:
    """After an upgrade from schema ``since`` (None or "new": none), MAC the tables that revision lacked;
    returns them. A state row without its MAC is refused unless ``since`` predates row MACs, so erasing
    MACs never gets an edit sealed. Raises ``Sealed``."""
    since = since or "new"  # "new" sorts after every revision
    if since >= max(SINCE) or (since < "0009" and _state.has_mac(tx)):
        return []
    return seal_all(tx, since)


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
