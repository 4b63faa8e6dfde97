"""What the vault is compared with, doing the same store and retrieve in the same run.

* ``seed-literal``: the seed's text read literally: a per-secret key from
  PBKDF2-HMAC-SHA256 (100,000 iterations) on every operation, AES-256-GCM,
  sqlite3 with its default journal, an audit row per operation.
* ``keyrings.cryptfile``: ``CryptFileKeyring`` with a set ``keyring_key``
  (Argon2id per value, the whole file rewritten per store).
* ``pykeepass``: a KDBX database; store = add an entry and save (the file is
  re-encrypted, its KDF run, on every save); retrieve = find on the open
  database (in memory, the most favourable reading for the peer).
* ``floor``: raw sqlite3 point select + AES-GCM + audit insert + commit, WAL,
  ``synchronous=FULL`` for store and ``NORMAL`` for retrieve; nothing the
  vault does can be cheaper than this. ``floor-pg`` is the same on psycopg.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from .build import secret_name
from .timing import Stat, measure

_AUDIT_SQL = "INSERT INTO audit (ts, principal, operation, env, name, ok) VALUES (?, ?, ?, ?, ?, 1)"
_PBKDF2_ITERATIONS = 100_000


def _sqlite(path: Path, wal: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(
        "CREATE TABLE IF NOT EXISTS secrets (env TEXT, name TEXT, salt BLOB, nonce BLOB, ct BLOB, "
        "PRIMARY KEY (env, name));"
        "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, ts INTEGER, principal TEXT, operation TEXT, "
        "env TEXT, name TEXT, ok INTEGER);")
    return conn


def _fill(conn: sqlite3.Connection, n: int, key: bytes, seed: int) -> None:
    """``n`` rows sealed under one key (filler rows are never read by the seed-literal bench)."""
    rng = random.Random(f"{seed}:peer-fill")
    aead = AESGCM(key)
    rows = []
    for i in range(n):
        env, name = secret_name(i)
        nonce = os.urandom(12)
        salt = rng.randbytes(16)
        rows.append((env, name, salt, nonce, aead.encrypt(nonce, b"v" * 48, f"{env}/{name}".encode())))
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO secrets VALUES (?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")


# -- the floor -------------------------------------------------------------------------------------
def bench_floor(workdir: Path, size: int, iterations: int, seed: int) -> dict[str, Stat]:
    """Raw sqlite3 + AES-GCM + audit insert + commit, at ``size`` rows."""
    conn = _sqlite(workdir / f"floor-{size}.db", wal=True)
    key = AESGCM.generate_key(256)
    aead = AESGCM(key)
    _fill(conn, size, key, seed)
    rng = random.Random(f"{seed}:floor")

    def retrieve(n: int) -> None:
        env, name = secret_name(rng.randrange(size))
        conn.execute("BEGIN")
        nonce, ct = conn.execute("SELECT nonce, ct FROM secrets WHERE env = ? AND name = ?", (env, name)).fetchone()
        aead.decrypt(nonce, ct, f"{env}/{name}".encode())
        conn.execute(_AUDIT_SQL, (time.time_ns(), "svc", "read", env, name))
        conn.execute("COMMIT")

    def store(n: int) -> None:
        env, name = "production", f"floor/new/{n}-{rng.getrandbits(40)}"
        nonce = os.urandom(12)
        ct = aead.encrypt(nonce, b"v" * 40, f"{env}/{name}".encode())
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO secrets VALUES (?, ?, ?, ?, ?)", (env, name, b"", nonce, ct))
        conn.execute(_AUDIT_SQL, (time.time_ns(), "svc", "store", env, name))
        conn.execute("COMMIT")

    conn.execute("PRAGMA synchronous=NORMAL")
    out = {"retrieve": measure(retrieve, iterations)}
    conn.execute("PRAGMA synchronous=FULL")
    out["store"] = measure(store, max(10, iterations // 2))
    conn.close()
    return out


def bench_floor_pg(url: str, size: int, iterations: int, seed: int) -> dict[str, Stat]:
    """The floor on PostgreSQL: psycopg point select + AES-GCM + audit insert + commit."""
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    key = AESGCM.generate_key(256)
    aead = AESGCM(key)
    rng = random.Random(f"{seed}:floor-pg")
    with psycopg.connect(conninfo) as conn:
        conn.execute("CREATE TABLE floor_secrets (env text, name text, nonce bytea, ct bytea, PRIMARY KEY (env, name))")
        conn.execute("CREATE TABLE floor_audit (id bigserial PRIMARY KEY, ts bigint, principal text, "
                     "operation text, env text, name text)")
        with conn.cursor().copy("COPY floor_secrets (env, name, nonce, ct) FROM STDIN") as copy:
            for i in range(size):
                env, name = secret_name(i)
                nonce = os.urandom(12)
                copy.write_row((env, name, nonce, aead.encrypt(nonce, b"v" * 48, f"{env}/{name}".encode())))
        conn.commit()
        conn.execute("ANALYZE")
        conn.commit()
        cur = conn.cursor()

        def retrieve(n: int) -> None:
            env, name = secret_name(rng.randrange(size))
            cur.execute("SELECT nonce, ct FROM floor_secrets WHERE env = %s AND name = %s", (env, name))
            nonce, ct = cur.fetchone()
            aead.decrypt(nonce, ct, f"{env}/{name}".encode())
            cur.execute("INSERT INTO floor_audit (ts, principal, operation, env, name) VALUES (%s, %s, %s, %s, %s)",
                        (time.time_ns(), "svc", "read", env, name))
            conn.commit()

        def store(n: int) -> None:
            env, name = "production", f"floor/new/{n}-{rng.getrandbits(40)}"
            nonce = os.urandom(12)
            cur.execute("INSERT INTO floor_secrets VALUES (%s, %s, %s, %s)",
                        (env, name, nonce, aead.encrypt(nonce, b"v" * 40, f"{env}/{name}".encode())))
            cur.execute("INSERT INTO floor_audit (ts, principal, operation, env, name) VALUES (%s, %s, %s, %s, %s)",
                        (time.time_ns(), "svc", "store", env, name))
            conn.commit()

        return {"retrieve": measure(retrieve, iterations), "store": measure(store, max(10, iterations // 2))}


# -- the seed read literally ---------------------------------------------------------------------------
def bench_seed_literal(workdir: Path, size: int, iterations: int, seed: int) -> dict[str, Stat]:
    """PBKDF2-SHA256 100k per operation + AES-GCM + sqlite3 (default rollback journal, FULL)."""
    conn = _sqlite(workdir / "seed-literal.db", wal=False)
    master = os.urandom(32)
    _fill(conn, size, os.urandom(32), seed)

    def derive(salt: bytes) -> AESGCM:
        kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=_PBKDF2_ITERATIONS)
        return AESGCM(kdf.derive(master))

    stored: list[tuple[str, str]] = []

    def store(n: int) -> None:
        env, name = "production", f"seed/new/{n}-{os.urandom(5).hex()}"
        salt, nonce = os.urandom(16), os.urandom(12)
        ct = derive(salt).encrypt(nonce, b"v" * 40, f"{env}/{name}".encode())
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO secrets VALUES (?, ?, ?, ?, ?)", (env, name, salt, nonce, ct))
        conn.execute(_AUDIT_SQL, (time.time_ns(), "svc", "store", env, name))
        conn.execute("COMMIT")
        stored.append((env, name))

    def retrieve(n: int) -> None:
        env, name = stored[n % len(stored)]
        conn.execute("BEGIN")
        salt, nonce, ct = conn.execute("SELECT salt, nonce, ct FROM secrets WHERE env = ? AND name = ?",
                                       (env, name)).fetchone()
        derive(salt).decrypt(nonce, ct, f"{env}/{name}".encode())
        conn.execute(_AUDIT_SQL, (time.time_ns(), "svc", "read", env, name))
        conn.execute("COMMIT")

    out = {"store": measure(store, iterations, warmup=1), "retrieve": measure(retrieve, iterations, warmup=1)}
    conn.close()
    return out


# -- peer libraries ---------------------------------------------------------------------------------------
def bench_cryptfile(workdir: Path, size: int, iterations: int) -> dict[str, Any]:
    """keyrings.cryptfile: set_password / get_password with a keyring_key (no prompt)."""
    from keyrings.cryptfile.cryptfile import CryptFileKeyring

    kr = CryptFileKeyring()
    kr.file_path = str(workdir / "cryptfile.cfg")
    kr.keyring_key = "bench keyring passphrase"
    for i in range(size):
        kr.set_password("bench", f"fill-{i}", "v" * 40)
    names: list[str] = []

    def store(n: int) -> None:
        user = f"new-{n}-{os.urandom(4).hex()}"
        kr.set_password("bench", user, "v" * 40)
        names.append(user)

    def retrieve(n: int) -> None:
        if kr.get_password("bench", names[n % len(names)]) is None:
            raise AssertionError("cryptfile lost a value")

    return {"store": measure(store, iterations, warmup=0), "retrieve": measure(retrieve, iterations, warmup=0),
            "entries": size, "argon2": {"time_cost": kr.time_cost, "memory_kib": kr.memory_cost}}


def bench_pykeepass(workdir: Path, size: int, iterations: int) -> dict[str, Any]:
    """pykeepass: store = add_entry + save; retrieve = find_entries on the open database."""
    from pykeepass import PyKeePass, create_database

    path = str(workdir / "bench.kdbx")
    kp = create_database(path, password="bench keepass passphrase")
    for i in range(size):
        kp.add_entry(kp.root_group, f"fill-{i}", "svc", "v" * 40)
    kp.save()
    rng = random.Random("pykeepass")
    titles: list[str] = []

    def store(n: int) -> None:
        title = f"new-{n}-{os.urandom(4).hex()}"
        kp.add_entry(kp.root_group, title, "svc", "v" * 40)
        kp.save()
        titles.append(title)

    def retrieve(n: int) -> None:
        title = f"fill-{rng.randrange(size)}" if size else titles[n % len(titles)]
        if kp.find_entries(title=title, first=True).password is None:
            raise AssertionError("pykeepass lost a value")

    out: dict[str, Any] = {"store": measure(store, iterations, warmup=0),
                           "retrieve": measure(retrieve, max(iterations, 20), warmup=1), "entries": size}
    out["open"] = measure(lambda n: PyKeePass(path, password="bench keepass passphrase"), max(1, iterations // 3),
                          warmup=0)
    return out
