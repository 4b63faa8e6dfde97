"""Fast, reproducible bulk builds of large vaults, through the real storage layer and barrier.

Secrets are sealed by the vault's own barrier with the same associated data
the facade uses, so every benchmark read really decrypts. Audit rows are made
by ``vault_core.audit.make_row`` and chained from the current head, so
``verify_audit_log`` still passes; the head is then moved with ``repos.state.advance_head``
and the per-day counters are bumped, exactly as ``Tx.append_audit`` would.

Rows go in with one driver ``executemany`` (SQLite) or ``COPY`` (PostgreSQL,
its bulk path) per chunk, in big transactions: a row-at-a-time build of a
million audit rows would take longer than the whole benchmark.
"""

from __future__ import annotations

import base64
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import and_, insert, select, update

from vault_core import audit
from vault_core.crypto import Barrier, sealer
from vault_core.crypto.keyring import load_keyring, unwrap_key
from vault_core.service.versions import encode_plain
from vault_core.storage.schema import audit_daily, audit_log, secret_versions, secrets, wrapped_keys
from vault_core.storage import repos

# Data shape: names spread over 4 environments and 6 types; 60% of secrets rotate on a schedule
# (30/90/365 days), 20% expire; audit rows over the last year, 7 operations, 200 principals (Pareto).
ENVIRONMENTS = ("production", "staging", "development", "testing")
TYPES = ("api_key", "password", "database_url", "token", "generic", "encryption_key")
KINDS = ("db_password", "api_key", "token", "signing_key", "webhook_secret")
OPERATIONS = (("read", 80), ("store", 5), ("update", 5), ("rotate", 2), ("reveal", 3), ("delete", 1),
              ("login", 4))
from vault_core.types import US_PER_DAY  # noqa: E402
_CHUNK = 50_000

_SECRET_COLS = [c.key for c in secrets.c]
_VERSION_COLS = [c.key for c in secret_versions.c]
_AUDIT_COLS = [c.key for c in audit_log.c]


def secret_name(i: int) -> tuple[str, str]:
    """(environment, name) of the i-th bulk secret: deterministic, so benchmarks can address it."""
    return ENVIRONMENTS[i % 4], f"app-{i // 40:05d}/{KINDS[i % 5]}-{i:07d}"


def principal_name(k: int) -> str:
    return f"svc-{k:03d}"


def _keys(vault) -> tuple[Barrier, bytes]:
    """A barrier over the vault's keyring and its audit key, built as any holder of the master key would:
    the master key from the public ``export_master_key`` (audited; the bench owns the vault), the wrapped
    keys from the database. No private state of the vault is read."""
    master = base64.b64decode(vault.export_master_key())
    with vault.storage.transaction(write=False) as tx:
        rows = repos.keys.wrapped_keys_of(tx)
    (audit_row,) = [r for r in rows if r["purpose"] == "audit"]
    return (Barrier(load_keyring(master, [r for r in rows if r["purpose"] == "data"])),
            unwrap_key(master, "audit", audit_row["term"], audit_row["wrapped"]))


def _rows_for_secrets(barrier: Barrier, start: int, stop: int, now: int, seed: int) -> tuple[list, list]:
    rng = random.Random(f"{seed}:secrets:{start}")
    srows, vrows = [], []
    for i in range(start, stop):
        env, name = secret_name(i)
        sid = rng.randbytes(16).hex()
        salt = rng.randbytes(16)
        created = now - rng.randrange(1, 400) * US_PER_DAY
        interval = rng.choice((None, None, 30, 90, 365))
        expires = now + rng.randrange(-10, 700) * US_PER_DAY if rng.random() < 0.2 else None
        value = encode_plain(rng.randbytes(24).hex().encode(), True)
        blob = sealer.seal_version(barrier, {"environment": env, "id": sid, "name": name, "salt": salt}, 1, value)
        row = dict(id=sid, environment=env, name=name, secret_type=TYPES[i % len(TYPES)],
                   description=f"bulk secret {i}", tags='["bench"]', salt=salt, current_version=1,
                   previous_version=None, max_versions=20, created_at=created, created_by="bench-loader",
                   updated_at=created, updated_by="bench-loader", expires_at=expires,
                   rotation_interval_days=interval,
                   # a vault whose scheduler keeps up: ~3% of scheduled secrets are a few days overdue
                   next_rotation_at=now + rng.randrange(-3, interval) * US_PER_DAY if interval else None,
                   last_rotated_at=None, deleted_at=None, generator=None)
        srows.append(row)
        vrow = dict(secret_id=sid, version=1, ciphertext=blob, key_term=barrier.term_of(blob), state="current",
                    created_at=created, created_by="bench-loader")
        vrows.append(tuple(vrow[c] for c in _VERSION_COLS))
    return srows, vrows


def _bulk(tx, table: str, cols: Sequence[str], rows: list[tuple]) -> None:
    """One bulk insert on the driver connection of this transaction."""
    cur = tx.conn.connection.driver_connection.cursor()
    if tx.backend == "postgresql":
        with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in cols)
        cur.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows)
    cur.close()


def add_secrets(vault, start: int, stop: int, *, seed: int, now: int) -> None:
    """Insert bulk secrets ``start..stop-1`` (one current version each, sealed by the real barrier)."""
    barrier = _keys(vault)[0]
    term = barrier.keyring.active.term
    for lo in range(start, stop, _CHUNK):
        hi = min(stop, lo + _CHUNK)
        srows, vrows = _rows_for_secrets(barrier, lo, hi, now, seed)
        with vault.storage.transaction() as tx:
            repos.integrity.sealed(tx, "secrets", *srows)  # row MACs, the table digest moved once
            _bulk(tx, "secrets", _SECRET_COLS, [tuple(row[c] for c in _SECRET_COLS) for row in srows])
            _bulk(tx, "secret_versions", _VERSION_COLS, vrows)
            repos.keys.count_encryptions(tx, term, hi - lo)
    with vault.storage.transaction() as tx:  # the bulk load bypassed the vault: rebuild its counters
        repos.secrets.recount_secrets(tx)


def secret_ids(vault, count: int) -> list[str]:
    """Ids of the first ``count`` bulk secrets (audit rows refer to them)."""
    names = [secret_name(i) for i in range(count)]
    out = []
    with vault.storage.transaction(write=False) as tx:
        for lo in range(0, len(names), 500):
            part = names[lo:lo + 500]
            envs = {e for e, _ in part}
            found = {(r.environment, r.name): r.id for r in tx.conn.execute(
                select(secrets.c.id, secrets.c.environment, secrets.c.name)
                .where(secrets.c.environment.in_(envs), secrets.c.name.in_([n for _, n in part])))}
            out += [found[k] for k in part]
    return out


def _audit_rows(key: bytes, *, seq0: int, prev: bytes, n: int, t0: int, span_us: int, ids: list[str],
                seed: int, daily: Counter) -> Iterator[tuple]:
    rng = random.Random(f"{seed}:audit:{seq0}")
    ops = [op for op, w in OPERATIONS for _ in range(w)]
    for k in range(n):
        seq = seq0 + k
        ts = t0 + (k * span_us) // n
        p = min(int(rng.paretovariate(1.2)) - 1, 199)  # a few busy principals, a long tail
        op = rng.choice(ops)
        outcome = "allowed" if rng.random() < 0.97 else rng.choice(("denied", "failed"))
        i = rng.randrange(len(ids)) if ids else 0
        env, name = secret_name(i)
        row = audit.make_row(key, seq=seq, prev_mac=prev, ts=ts, principal=principal_name(p), roles="",
                             client_ip=f"10.{p // 250}.{p % 250}.{rng.randrange(1, 250)}",
                             user_agent="bench-client/1.0", operation=op, environment=env,
                             secret_id=ids[i] if ids else None, secret_name=name, version=1,
                             outcome=outcome, reason="" if outcome == "allowed" else "bench")
        prev = row["mac"]
        daily[(ts // US_PER_DAY, op, outcome)] += 1
        yield tuple(row[c] for c in _AUDIT_COLS)


def add_audit_rows(vault, n: int, *, seed: int, now: int, days: int = 365, id_pool: int = 1000) -> None:
    """Chain ``n`` audit rows spread over the ``days`` before ``now`` onto the current head."""
    key = _keys(vault)[1]
    ids = secret_ids(vault, id_pool)
    with vault.storage.transaction(write=False) as tx:
        state = repos.state.get_state(tx)
    seq, prev = state["audit_seq"] + 1, bytes(state["audit_mac"])
    span = days * US_PER_DAY
    t0 = now - span - 3_600_000_000
    daily: Counter = Counter()
    done = 0
    while done < n:
        m = min(_CHUNK * 4, n - done)
        rows = list(_audit_rows(key, seq0=seq, prev=prev, n=m, t0=t0 + (done * span) // n,
                                span_us=(m * span) // n, ids=ids, seed=seed, daily=daily))
        with vault.storage.transaction() as tx:
            _bulk(tx, "audit_log", _AUDIT_COLS, rows)
            last = rows[-1]
            seq, prev = last[_AUDIT_COLS.index("seq")] + 1, bytes(last[_AUDIT_COLS.index("mac")])
            repos.state.advance_head(tx, seq - 1, prev)  # keeps the state row's MAC
        done += m
    with vault.storage.transaction() as tx:
        _merge_daily(tx, daily)


def _merge_daily(tx, daily: Counter) -> None:
    d = audit_daily.c
    existing = {(r.day, r.operation, r.outcome) for r in tx.conn.execute(select(d.day, d.operation, d.outcome))}
    new = [dict(day=k[0], operation=k[1], outcome=k[2], count=v) for k, v in daily.items() if k not in existing]
    if new:
        tx.conn.execute(insert(audit_daily), new)
    for k, v in daily.items():
        if k in existing:
            tx.conn.execute(update(audit_daily).where(and_(d.day == k[0], d.operation == k[1], d.outcome == k[2]))
                            .values(count=d.count + v))


def analyze(vault) -> None:
    """Refresh planner statistics on PostgreSQL (autovacuum would, soon after a real bulk load)."""
    if vault.storage.backend == "postgresql":
        with vault.storage.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


def counts(vault) -> dict[str, Any]:
    """Secrets and audit rows actually stored (the report states them)."""
    from sqlalchemy import func

    with vault.storage.transaction(write=False) as tx:
        n_sec = tx.conn.execute(select(func.count()).select_from(secrets)).scalar_one()
        state = repos.state.get_state(tx)
        n_keys = tx.conn.execute(select(wrapped_keys.c.encryptions).where(wrapped_keys.c.purpose == "data")).all()
    return {"secrets": n_sec, "audit_rows": state["audit_seq"], "encryptions": sum(r[0] for r in n_keys)}
