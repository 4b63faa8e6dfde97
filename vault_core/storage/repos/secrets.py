"""Secrets (``secrets``): metadata rows, their live counters (``secret_counts``) and rotation schedule.

Ciphertexts live in ``versions``; the hot read joins the two in one query. Every metadata row is MACed and
checked on read (``integrity``): a current version moved back, a deletion undone or a schedule edited in
the database file is refused, never obeyed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update

from ..schema import secret_counts, secret_versions, secrets, vault_state
from ..tx import Hot, Tx
from . import integrity, state as _state

_S, _V, _C = secrets.c, secret_versions.c, secret_counts.c
_T = "secrets"

# Hot-path statements are built once with bind parameters: SQLAlchemy then
# reuses their cache key and compiled form, which halves the cost of a read.
_CURRENT_COLS = (*secrets.c, _V.ciphertext)
_READ_CURRENT = Hot(
    select(*_CURRENT_COLS)
    .select_from(secrets.join(secret_versions, and_(_V.secret_id == _S.id, _V.version == _S.current_version)))
    .where(and_(_S.environment == bindparam("env"), _S.name == bindparam("name")))
)
# A read's two lookups in one statement: the vault state (rules version) and the secret's current version.
_STATE_AND_CURRENT = Hot(
    select(vault_state, *[c.label("s_" + c.key) for c in _CURRENT_COLS])
    .select_from(vault_state
                 .outerjoin(secrets, and_(_S.environment == bindparam("env"), _S.name == bindparam("name")))
                 .outerjoin(secret_versions, and_(_V.secret_id == _S.id, _V.version == _S.current_version)))
    .where(vault_state.c.id == 1))
_STATE_KEYS = tuple(c.key for c in vault_state.c)
_COLUMNS = tuple(c.key for c in _S if c.key != "mac")
_DEFAULTS = {c.key: c.default.arg for c in _S if c.default is not None and not callable(c.default.arg)}
_FIND = Hot(select(secrets).where(and_(_S.environment == bindparam("env"), _S.name == bindparam("name"))))
_BY_ID = Hot(select(secrets).where(_S.id == bindparam("sid")))
_INSERT = Hot(insert(secrets).values({c: bindparam(c) for c in (*_COLUMNS, "mac")}))
_COUNT_BUMP = Hot(update(secret_counts)
                  .where(and_(_C.environment == bindparam("env"), _C.secret_type == bindparam("stype")))
                  .values(n=_C.n + bindparam("delta")))
_COUNT_INSERT = Hot(insert(secret_counts).values(environment=bindparam("env"), secret_type=bindparam("stype"),
                                                 n=bindparam("delta")))
# Built once: this runs on every cache check of the st.secrets replacement.
_LIVE_VERSIONS = (select(_S.name, _S.current_version, _S.tags)
                  .where(and_(_S.environment == bindparam("env"), _S.deleted_at.is_(None))))
_LIVE_VERSIONS_HOT = Hot(_LIVE_VERSIONS)
_UPDATES: dict[tuple, Hot] = {}


def _update_stmt(keys: tuple[str, ...], cas: bool) -> Hot:
    """An UPDATE of exactly these columns (optionally guarded by the current version), built once."""
    stmt = _UPDATES.get((keys, cas))
    if stmt is None:
        where = _S.id == bindparam("sid")
        if cas:
            where = and_(where, _S.current_version == bindparam("expected"))
        stmt = _UPDATES[(keys, cas)] = Hot(update(secrets).where(where).values({k: bindparam("v_" + k)
                                                                               for k in keys}).returning(*secrets.c))
    return stmt


def _checked(tx: Tx, row: Mapping[str, Any] | None, again=None) -> Mapping[str, Any] | None:
    if row is None:
        return None
    rows = integrity.check(tx, _T, [row], again=again)
    return rows[0] if rows else None  # read again under the lock (``again``), it may be gone


def _current_again(tx: Tx, environment: str, name: str):
    """``_READ_CURRENT`` run again: a row and its ciphertext brought up to date together, never apart."""
    def again() -> list[Mapping[str, Any]]:
        row = tx.one(_READ_CURRENT, {"env": environment, "name": name})
        return [] if row is None else [row]
    return again


def read_current(tx: Tx, environment: str, name: str) -> Mapping[str, Any] | None:
    """The hot path of a read: metadata and current ciphertext in one indexed query. Raises ``IntegrityError``."""
    return _checked(tx, tx.one(_READ_CURRENT, {"env": environment, "name": name}),
                    _current_again(tx, environment, name))


def state_and_current(tx: Tx, environment: str, name: str) -> tuple[Mapping[str, Any], Mapping[str, Any] | None]:
    """(the vault state row, ``read_current(environment, name)``) in one statement: a read's hot path.

    Raises ``IntegrityError``."""
    row = tx.one(_STATE_AND_CURRENT, {"env": environment, "name": name})
    state = _state.checked(tx, {k: row[k] for k in _STATE_KEYS})  # its MAC, as every read of the state row
    if row["s_id"] is None or row["s_ciphertext"] is None:
        return state, None
    return state, _checked(tx, {c.key: row["s_" + c.key] for c in _CURRENT_COLS},
                           _current_again(tx, environment, name))


def find_secret(tx: Tx, environment: str, name: str) -> Mapping[str, Any] | None:
    """The metadata row of (environment, name), checked. Raises ``IntegrityError``."""
    return _checked(tx, tx.one(_FIND, {"env": environment, "name": name}))


def secret_by_id(tx: Tx, secret_id: str) -> Mapping[str, Any] | None:
    """The metadata row of ``secret_id``, checked. Raises ``IntegrityError``."""
    return _checked(tx, tx.one(_BY_ID, {"sid": secret_id}))


def any_secret(tx: Tx) -> bool:
    """Whether the vault holds any secret at all (deleted ones included)."""
    return tx.one(select(secrets.c.id).limit(1)) is not None


def insert_secret(tx: Tx, **values: Any) -> None:
    unknown = set(values) - set(_COLUMNS)
    if unknown:
        raise ValueError(f"unknown secret columns: {sorted(unknown)}")
    tx.run(_INSERT, integrity.sealed(tx, _T, {c: values.get(c, _DEFAULTS.get(c)) for c in _COLUMNS}))


def _update(tx: Tx, secret_id: str, expected: int | None, values: dict[str, Any]) -> int:
    keys = tuple(sorted(values))
    params = {"v_" + k: values[k] for k in keys}
    params["sid"] = secret_id
    if expected is not None:
        params["expected"] = expected
    rows = tx.all(_update_stmt(keys, expected is not None), params)  # the rows as changed (RETURNING)
    if rows:
        integrity.reseal(tx, _T, rows=rows)
    return len(rows)


def update_secret(tx: Tx, secret_id: str, **values: Any) -> None:
    _update(tx, secret_id, None, values)


def cas_update_secret(tx: Tx, secret_id: str, expected_version: int, **values: Any) -> bool:
    """Update only if the current version is still ``expected_version``."""
    return _update(tx, secret_id, expected_version, values) == 1


def purge_secret(tx: Tx, secret_id: str) -> None:
    tx.run(delete(secret_versions).where(_V.secret_id == secret_id))
    integrity.delete(tx, _T, _S.id == secret_id)


def list_secrets(
    tx: Tx,
    *,
    environments: Iterable[str] | None = None,
    secret_type: str | None = None,
    prefix: str | None = None,
    contains: str | None = None,
    tag: str | None = None,
    include_deleted: bool = False,
    only_deleted: bool = False,
    after: tuple[str, str] | None = None,
    limit: int = 100,
) -> list[Mapping[str, Any]]:
    """Secrets ordered by (environment, name), keyset-paginated after ``after``.

    One statement is built (and compiled) per filter shape, with the values as parameters: a page of
    the list costs one driver execute and plain dicts, not a compile and row mappings."""
    envs = None if environments is None else list(environments)
    keyset = None
    if after is not None:
        if envs is not None and len(set(envs)) == 1:  # one environment: "name > ?" keeps to the index
            keyset = "name" if envs[0] == after[0] else "env"
        else:
            keyset = "pair"
    deleted = "only" if only_deleted else "any" if include_deleted else "live"
    shape = (None if envs is None else len(envs), secret_type is not None, bool(prefix), bool(contains),
             bool(tag), deleted, keyset)
    values: dict[str, Any] = {"lim": limit}
    for i, env in enumerate(envs or ()):
        values[f"env_{i}"] = env
    if secret_type is not None:
        values["stype"] = secret_type
    if prefix:
        values.update(p_lo=prefix, p_hi=prefix + "\U0010ffff")
    if contains:
        values["contains"] = "%" + _like_escape(contains) + "%"
    if tag:
        values["tag"] = "%" + _like_escape(json.dumps(tag)) + "%"
    if after is not None:
        values.update(a_env=after[0], a_name=after[1])
    return list(integrity.check(tx, _T, tx.all(_list_statement(shape), values)))


_LIST_SHAPES: dict[tuple, Hot] = {}


def _like_escape(text: str) -> str:
    """``text`` for a LIKE pattern with ``/`` as the escape (what ``contains(autoescape=True)`` does)."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _list_statement(shape: tuple) -> Hot:
    found = _LIST_SHAPES.get(shape)
    if found is not None:
        return found
    n_envs, by_type, by_prefix, by_contains, by_tag, deleted, keyset = shape
    stmt = select(secrets).order_by(_S.environment, _S.name).limit(bindparam("lim"))
    if n_envs is not None:
        stmt = stmt.where(_S.environment.in_([bindparam(f"env_{i}") for i in range(n_envs)]))
    if by_type:
        stmt = stmt.where(_S.secret_type == bindparam("stype"))
    if by_prefix:
        stmt = stmt.where(and_(_S.name >= bindparam("p_lo"), _S.name < bindparam("p_hi")))
    if by_contains:
        stmt = stmt.where(_S.name.like(bindparam("contains"), escape="/"))
    if by_tag:
        stmt = stmt.where(_S.tags.like(bindparam("tag"), escape="/"))
    if deleted == "only":
        stmt = stmt.where(_S.deleted_at.is_not(None))
    elif deleted == "live":
        stmt = stmt.where(_S.deleted_at.is_(None))
    if keyset == "name":
        stmt = stmt.where(_S.name > bindparam("a_name"))
    elif keyset == "env":
        stmt = stmt.where(_S.environment > bindparam("a_env"))
    elif keyset == "pair":
        stmt = stmt.where(or_(_S.environment > bindparam("a_env"),
                              and_(_S.environment == bindparam("a_env"), _S.name > bindparam("a_name"))))
    found = _LIST_SHAPES[shape] = Hot(stmt)
    return found


def live_versions(tx: Tx, environment: str, names: Sequence[str] | None = None) -> list[tuple[str, int, str]]:
    """(name, current version, tags JSON) of the live secrets of one environment: versions, never values."""
    if names is None:  # the common case runs on the driver cursor
        return [(r[0], r[1], r[2]) for r in tx.tuples(_LIVE_VERSIONS_HOT, {"env": environment})]
    if len(names) <= _ONE_BY_ONE:  # what changed since a cache looked (one or two names): no compile per call
        return [(r[0], r[1], r[2]) for n in names for r in tx.tuples(_LIVE_VERSION, {"env": environment, "name": n})]
    stmt = _LIVE_VERSIONS.where(_S.name.in_(list(names)))
    return [(r[0], r[1], r[2]) for r in tx.tuples(stmt, {"env": environment})]


_LIVE_VERSION = Hot(_LIVE_VERSIONS.where(_S.name == bindparam("name")))
_ONE_BY_ONE = 8


# -- counters --------------------------------------------------------------------------------------
def count_secret(tx: Tx, environment: str, secret_type: str, delta: int) -> None:
    """Move the live-secret counter of (environment, type) by ``delta`` (writers are serialised)."""
    key = {"env": environment, "stype": secret_type, "delta": delta}
    if tx.run(_COUNT_BUMP, key) == 0:
        tx.run(_COUNT_INSERT, key)


def count_secrets_by(tx: Tx) -> list[Mapping[str, Any]]:
    """Live secrets counted by environment and type (from the counters, not a scan)."""
    return tx.all(select(_C.environment, _C.secret_type, _C.n).where(_C.n != 0))


def recount_secrets(tx: Tx) -> None:
    """Rebuild the counters from the secrets table (after a bulk load that bypassed the vault)."""
    tx.run(delete(secret_counts))
    tx.run(insert(secret_counts).from_select(
        ["environment", "secret_type", "n"],
        select(_S.environment, _S.secret_type, func.count()).where(_S.deleted_at.is_(None))
        .group_by(_S.environment, _S.secret_type)))


def count_expiring(tx: Tx, before: int) -> int:
    """Live secrets with an expiry before ``before``."""
    return tx.scalar(select(func.count()).select_from(secrets)
                     .where(_S.deleted_at.is_(None), _S.expires_at.is_not(None), _S.expires_at < before))


def count_rotation_due(tx: Tx, at_or_before: int) -> int:
    """Live secrets whose next rotation is at or before ``at_or_before``."""
    return tx.scalar(select(func.count()).select_from(secrets)
                     .where(_S.deleted_at.is_(None), _S.next_rotation_at.is_not(None),
                            _S.next_rotation_at <= at_or_before))


# -- the rotation schedule --------------------------------------------------------------------------
def due_secret_ids(tx: Tx, now: int, limit: int) -> list[str]:
    """Live secrets whose rotation is due, oldest due first (uses ix_secrets_next_rotation)."""
    return [r[0] for r in tx.tuples(select(_S.id).where(and_(_S.next_rotation_at <= now, _S.deleted_at.is_(None)))
                                    .order_by(_S.next_rotation_at, _S.id).limit(limit))]


def claim_due(tx: Tx, secret_id: str, now: int, retry_at: int) -> bool:
    """Move a due secret's next rotation to ``retry_at`` only if it is still due: the once-only check."""
    claimed = tx.run(update(secrets).where(and_(_S.id == secret_id, _S.next_rotation_at <= now,
                                                _S.deleted_at.is_(None))).values(next_rotation_at=retry_at)) == 1
    if claimed:
        integrity.reseal(tx, _T, _S.id == secret_id)
    return claimed


def upcoming(tx: Tx, rotate_before: int, expire_before: int, limit: int) -> list[Mapping[str, Any]]:
    """Live secrets to rotate before ``rotate_before`` or expiring before ``expire_before``."""
    cols = (_S.id, _S.environment, _S.name, _S.secret_type, _S.next_rotation_at, _S.expires_at,
            _S.last_rotated_at, _S.rotation_interval_days, _S.generator)
    out: dict[str, Mapping[str, Any]] = {}
    for clause, order in ((_S.next_rotation_at <= rotate_before, _S.next_rotation_at),
                          (_S.expires_at <= expire_before, _S.expires_at)):
        for r in tx.all(select(*cols).where(and_(clause, _S.deleted_at.is_(None))).order_by(order).limit(limit)):
            out.setdefault(r["id"], r)
    return list(out.values())
