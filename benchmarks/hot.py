"""The hot paths against their in-run floors: ratio, p99, statements and round trips per operation,
retrieve throughput at 1/2/8/32 threads and 2/4 processes, on SQLite and PostgreSQL (issue 20).

    python -m benchmarks.hot [--secrets N] [--audit-rows M] [--pg] [--json FILE]

The vault op and its floor run interleaved (``ROUNDS`` rounds of a block of each), so that the
other load on the machine hits both alike; the ratio is of the medians over all rounds.
Floors: raw driver statements doing the least a safe vault could do (point select + AES-GCM +
audit insert + commit for a read, ``NORMAL``; insert + audit insert + commit, ``FULL``, for a
change; one indexed select of 100 rows for list/audit). Statements are counted by SQLite's
trace callback; PostgreSQL's statements and round trips by libpq's protocol trace (a round trip
is a ``Sync`` or a simple ``Query`` sent by the client). Run by ``benchmarks.run`` too.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import event

from .build import add_audit_rows, add_secrets, analyze, secret_name
from .timing import summarise, throughput

ROUNDS = 3
OPS = ("retrieve", "store", "update", "rotate", "list_100", "audit_newest_100")
FLOOR_OF = {"retrieve": "read", "store": "write", "update": "write", "rotate": "write",
            "list_100": "list", "audit_newest_100": "audit"}
THREADS = (1, 2, 8, 32)
PROCESSES = (2, 4)


# -- the vault's operations ----------------------------------------------------------------------
class Ops:
    def __init__(self, vault, size: int, seed: int):
        self.vault, self.size = vault, size
        self.rng = random.Random(seed)
        self.tag = f"{os.getpid()}-{self.rng.getrandbits(32):08x}"
        self.versions: dict[int, int] = {}

    def retrieve(self, n: int) -> None:
        env, name = secret_name(self.rng.randrange(self.size))
        if self.vault.get_secret(name, env) is None:
            raise AssertionError(f"{env}/{name} did not read back")

    def store(self, n: int) -> None:
        self.vault.store_secret(f"hot/{self.tag}/s{n}", "v" * 40, environment="production")

    def update(self, n: int) -> None:
        i = self.rng.randrange(self.size // 3, 2 * self.size // 3)
        env, name = secret_name(i)
        self.versions[i] = self.vault.update_secret(name, env, value=f"u{n}", cas=self.versions.get(i, 1))

    def rotate(self, n: int) -> None:
        env, name = secret_name(self.rng.randrange(2 * self.size // 3, self.size))
        self.vault.rotate_secret(name=name, environment=env)

    def list_100(self, n: int) -> None:
        env, name = secret_name(self.rng.randrange(max(1, self.size - 500)))
        self.vault.list_secrets(environment=env, limit=100, cursor=f"{env}/{name}")

    def audit_newest_100(self, n: int) -> None:
        self.vault.get_audit_log(limit=100)


# -- floors ----------------------------------------------------------------------------------------
class SqliteFloor:
    """Raw sqlite3 on tables of its own in a file next to the vault's."""

    def __init__(self, folder: Path, size: int, seed: int):
        self.conn = sqlite3.connect(folder / "floor.db", isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.executescript(
            "CREATE TABLE IF NOT EXISTS s (env TEXT, name TEXT, nonce BLOB, ct BLOB, PRIMARY KEY (env, name));"
            "CREATE TABLE IF NOT EXISTS a (id INTEGER PRIMARY KEY, ts INTEGER, principal TEXT, op TEXT, env TEXT, "
            "name TEXT); CREATE INDEX IF NOT EXISTS a_ts ON a (ts, id);")
        self.aead, self.size, self.rng = AESGCM(AESGCM.generate_key(256)), size, random.Random(seed)
        rows = []
        for i in range(size):
            env, name = secret_name(i)
            nonce = os.urandom(12)
            rows.append((env, name, nonce, self.aead.encrypt(nonce, b"v" * 48, name.encode())))
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT OR REPLACE INTO s VALUES (?, ?, ?, ?)", rows)
        self.conn.executemany("INSERT INTO a (ts, principal, op, env, name) VALUES (?, 'svc', 'read', ?, ?)",
                              [(time.time_ns() + k, r[0], r[1]) for k, r in enumerate(rows)])
        self.conn.execute("COMMIT")

    def read(self, n: int) -> None:
        c = self.conn
        env, name = secret_name(self.rng.randrange(self.size))
        c.execute("PRAGMA synchronous=NORMAL")
        c.execute("BEGIN")
        nonce, ct = c.execute("SELECT nonce, ct FROM s WHERE env = ? AND name = ?", (env, name)).fetchone()
        self.aead.decrypt(nonce, ct, name.encode())
        c.execute("INSERT INTO a (ts, principal, op, env, name) VALUES (?, 'svc', 'read', ?, ?)",
                  (time.time_ns(), env, name))
        c.execute("COMMIT")

    def write(self, n: int) -> None:
        c = self.conn
        env, name = "production", f"floor/{n}-{self.rng.getrandbits(40)}"
        nonce = os.urandom(12)
        c.execute("PRAGMA synchronous=FULL")
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO s VALUES (?, ?, ?, ?)", (env, name, nonce, self.aead.encrypt(nonce, b"v" * 40, b"")))
        c.execute("INSERT INTO a (ts, principal, op, env, name) VALUES (?, 'svc', 'store', ?, ?)",
                  (time.time_ns(), env, name))
        c.execute("COMMIT")

    def list(self, n: int) -> None:
        env, name = secret_name(self.rng.randrange(max(1, self.size - 500)))
        self.conn.execute("SELECT env, name FROM s WHERE env = ? AND name > ? ORDER BY name LIMIT 100",
                          (env, name)).fetchall()

    def audit(self, n: int) -> None:
        self.conn.execute("SELECT * FROM a ORDER BY ts DESC, id DESC LIMIT 100").fetchall()


class PgFloor:
    """psycopg on tables of its own in the vault's database."""

    def __init__(self, url: str, size: int, seed: int):
        import psycopg

        self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        c = self.conn
        c.execute("DROP TABLE IF EXISTS floor_s, floor_a")
        c.execute("CREATE TABLE floor_s (env text, name text, nonce bytea, ct bytea, PRIMARY KEY (env, name))")
        c.execute("CREATE TABLE floor_a (id bigserial PRIMARY KEY, ts bigint, principal text, op text, env text, "
                  "name text)")
        c.execute("CREATE INDEX floor_a_ts ON floor_a (ts, id)")
        self.aead, self.size, self.rng = AESGCM(AESGCM.generate_key(256)), size, random.Random(seed)
        with c.cursor().copy("COPY floor_s (env, name, nonce, ct) FROM STDIN") as copy:
            for i in range(size):
                env, name = secret_name(i)
                nonce = os.urandom(12)
                copy.write_row((env, name, nonce, self.aead.encrypt(nonce, b"v" * 48, name.encode())))
        c.commit()
        c.execute("ANALYZE floor_s")
        c.commit()
        self.cur = c.cursor()

    def read(self, n: int) -> None:
        env, name = secret_name(self.rng.randrange(self.size))
        self.cur.execute("SELECT nonce, ct FROM floor_s WHERE env = %s AND name = %s", (env, name))
        nonce, ct = self.cur.fetchone()
        self.aead.decrypt(nonce, ct, name.encode())
        self.cur.execute("INSERT INTO floor_a (ts, principal, op, env, name) VALUES (%s, 'svc', 'read', %s, %s)",
                         (time.time_ns(), env, name))
        self.conn.commit()

    def write(self, n: int) -> None:
        env, name = "production", f"floor/{n}-{self.rng.getrandbits(40)}"
        nonce = os.urandom(12)
        self.cur.execute("INSERT INTO floor_s VALUES (%s, %s, %s, %s)",
                         (env, name, nonce, self.aead.encrypt(nonce, b"v" * 40, b"")))
        self.cur.execute("INSERT INTO floor_a (ts, principal, op, env, name) VALUES (%s, 'svc', 'store', %s, %s)",
                         (time.time_ns(), env, name))
        self.conn.commit()

    def list(self, n: int) -> None:
        env, name = secret_name(self.rng.randrange(max(1, self.size - 500)))
        self.cur.execute("SELECT env, name FROM floor_s WHERE env = %s AND name > %s ORDER BY name LIMIT 100",
                         (env, name))
        self.cur.fetchall()
        self.conn.commit()

    def audit(self, n: int) -> None:
        self.cur.execute("SELECT * FROM floor_a ORDER BY ts DESC, id DESC LIMIT 100")
        self.cur.fetchall()
        self.conn.commit()


# -- statement and round-trip counting -------------------------------------------------------------
class Counter:
    """Counts what the vault's pooled connections send while ``on`` (new connections only)."""

    def __init__(self, vault, folder: Path):
        self.backend = vault.storage.backend
        self.on = False
        self.statements = 0
        self.trace = folder / "libpq.trace"
        engine = vault.storage.engine
        if self.backend == "sqlite":
            event.listen(engine, "connect", lambda dbapi, _rec: dbapi.set_trace_callback(self._count))
        else:
            self._fd = os.open(self.trace, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            event.listen(engine, "connect", lambda dbapi, _rec: self._trace_pg(dbapi))
        engine.dispose()  # every connection from now on is counted

    def _count(self, _sql: str) -> None:
        if self.on:
            self.statements += 1

    def _trace_pg(self, dbapi) -> None:
        from psycopg import pq

        dbapi.pgconn.trace(self._fd)
        dbapi.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    def count(self, fn, n: int) -> dict[str, float]:
        """(statements, round trips) per call of ``fn`` over ``n`` calls."""
        start = self.trace.stat().st_size if self.backend != "sqlite" else 0
        self.statements, self.on = 0, True
        for i in range(n):
            fn(10_000_000 + i)
        self.on = False
        if self.backend == "sqlite":
            return {"statements": self.statements / n, "round_trips": 0.0}
        with open(self.trace, "rb") as f:
            f.seek(start)
            kinds = [line.split(b"\t")[2] for line in f.read().splitlines()
                     if line.startswith(b"F\t") and line.count(b"\t") >= 2]
        stmts = sum(k in (b"Execute", b"Query") for k in kinds)
        trips = sum(k in (b"Sync", b"Query") for k in kinds)
        return {"statements": stmts / n, "round_trips": trips / n}


# -- processes ---------------------------------------------------------------------------------------
def _proc_worker(vault_dir: str, url: str | None, size: int, seconds: float, seed: int, gate, out) -> None:
    from vault_core import open_vault

    vault = open_vault(vault_dir, database_url=url, principal="bench-owner", create=False)
    ops = Ops(vault, size, seed)
    ops.retrieve(-1)
    gate.wait()
    stop, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < stop:
        ops.retrieve(n)
        n += 1
    out.put(n)


def process_throughput(vault_dir: Path, url: str | None, size: int, procs: int, seconds: float) -> float:
    ctx = multiprocessing.get_context("spawn")
    gate, out = ctx.Barrier(procs + 1), ctx.Queue()
    workers = [ctx.Process(target=_proc_worker, args=(str(vault_dir), url, size, seconds, 1000 + p, gate, out))
               for p in range(procs)]
    for w in workers:
        w.start()
    gate.wait()
    t0 = time.perf_counter()
    total = sum(out.get(timeout=600) for _ in workers)
    elapsed = time.perf_counter() - t0
    for w in workers:
        w.join()
    return total / elapsed


# -- the run --------------------------------------------------------------------------------------------
def bench(vault, vault_dir: Path, floor, folder: Path, size: int, iters: int, tp_seconds: float,
          url: str | None, seed: int) -> dict[str, Any]:
    ops = Ops(vault, size, seed)
    counter = Counter(vault, folder)
    out: dict[str, Any] = {"ops": {}}
    for op in OPS:
        fn, floor_fn = getattr(ops, op), getattr(floor, FLOOR_OF[op])
        samples: dict[str, list[int]] = {"vault": [], "floor": []}
        for _ in range(ROUNDS):  # interleaved: the machine's other load hits both alike
            for key, f in (("vault", fn), ("floor", floor_fn)):
                for i in range(3):
                    f(-1 - i)
                clock = time.perf_counter_ns
                for i in range(iters):
                    t = clock()
                    f(i)
                    samples[key].append(clock() - t)
        v, fl = summarise(samples["vault"]), summarise(samples["floor"])
        out["ops"][op] = {"median_ms": v.median_ms, "p99_ms": v.p99_ms, "floor_ms": fl.median_ms,
                          "floor_p99_ms": fl.p99_ms, "ratio": v.median_ms / fl.median_ms,
                          **counter.count(fn, 20)}
    out["throughput"] = {}
    for t in THREADS:
        out["throughput"][f"{t} threads"] = throughput(lambda k: getattr(Ops(vault, size, seed + k), "retrieve"),
                                                       t, tp_seconds)
    for p in PROCESSES:
        out["throughput"][f"{p} processes"] = process_throughput(vault_dir, url, size, p, tp_seconds)
    group = getattr(getattr(vault, "_runner", None), "group", None)
    if group is not None and group.batches:
        out["rows_per_group_commit"] = group.rows / group.batches
    t = time.perf_counter()
    report = vault.verify_audit_log()
    out["verify"] = {"ok": report.ok, "rows": report.rows_checked, "s": time.perf_counter() - t}
    out["verify"]["s_per_million"] = out["verify"]["s"] * 1e6 / max(1, report.rows_checked)
    return out


def run(folder: Path, *, size: int, audit_rows: int, iters: int, tp_seconds: float, pg_url: str | None,
        seed: int = 20261202, log=print) -> dict[str, Any]:
    from vault_core import open_vault

    res: dict[str, Any] = {"secrets": size, "audit_rows": audit_rows}
    for backend in ("sqlite", "postgresql") if pg_url else ("sqlite",):
        url = pg_url if backend == "postgresql" else None
        vdir = folder / f"hot-{backend}"
        vault = open_vault(vdir, database_url=url, principal="bench-owner")
        now = vault.clock()
        add_secrets(vault, 0, size, seed=seed, now=now)
        add_audit_rows(vault, audit_rows, seed=seed, now=now, id_pool=min(1000, size))
        analyze(vault)
        floor = PgFloor(url, size, seed) if url else SqliteFloor(folder, size, seed)
        log(f"  hot paths: {backend} built ({size:,} secrets, {audit_rows:,} audit rows); measuring")
        res[backend] = bench(vault, vdir, floor, folder, size, iters, tp_seconds, url, seed)
        floor.conn.close()
        vault.storage.dispose()
    return res


def render(res: dict[str, Any]) -> str:
    lines = [f"Hot paths ({res['secrets']:,} secrets, {res['audit_rows']:,} audit rows; {ROUNDS} interleaved "
             "rounds; ratio = median / in-run floor median)", "",
             "| backend | operation | median ms | p99 ms | floor ms | × floor | statements | round trips |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for backend in ("sqlite", "postgresql"):
        r = res.get(backend)
        if not r:
            continue
        for op, o in r["ops"].items():
            trips = f"{o['round_trips']:.1f}" if backend == "postgresql" else "–"
            lines.append(f"| {backend} | {op} | {o['median_ms']:.3f} | {o['p99_ms']:.3f} | {o['floor_ms']:.3f} | "
                         f"{o['ratio']:.2f} | {o['statements']:.1f} | {trips} |")
    lines += ["", "| backend | " + " | ".join(f"retrieve ops/s, {k}" for k in _tp_keys()) + " | 8 ÷ 1 threads | "
              "rows per group commit | verify s per 1M rows |",
              "|---|" + "---:|" * (len(_tp_keys()) + 3)]
    for backend in ("sqlite", "postgresql"):
        r = res.get(backend)
        if not r:
            continue
        tp = r["throughput"]
        lines.append(f"| {backend} | " + " | ".join(f"{tp[k]:,.0f}" for k in _tp_keys())
                     + f" | {tp['8 threads'] / tp['1 threads']:.2f} | {r.get('rows_per_group_commit', 1.0):.1f} | "
                     f"{r['verify']['s_per_million']:.2f} |")
    return "\n".join(lines)


def _tp_keys() -> list[str]:
    return [f"{t} threads" for t in THREADS] + [f"{p} processes" for p in PROCESSES]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--secrets", type=int, default=100_000)
    ap.add_argument("--audit-rows", type=int, default=1_000_000)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=2.0, help="per throughput point")
    ap.add_argument("--pg", action="store_true", help="also PostgreSQL (a throwaway server)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="vault-hot-"))
    pg = None
    try:
        url = None
        if args.pg:
            from tests.pgserver import start_postgres

            pg = start_postgres(folder / "pg")
            pg.create_database("vault_hot")
            url = pg.url("vault_hot")
        res = run(folder, size=args.secrets, audit_rows=args.audit_rows, iters=args.iters,
                  tp_seconds=args.seconds, pg_url=url)
    finally:
        if pg is not None:
            pg.stop()
    print(render(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
