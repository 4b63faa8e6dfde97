"""Rotation and re-encryption figures at a given vault size (a benchmark, not a test).

    python -m benchmarks.rotation_bench 10000            # SQLite in a temp folder
    python -m benchmarks.rotation_bench 10000 --pg URL   # or a PostgreSQL database

Measures, on a vault of N bulk-built secrets: ``update_secret`` as the
yardstick, ``rotate_secret`` (a read then one write transaction), staged ``rotate_secret`` with no-op hooks (two transactions),
``revert_secret``, one ``rotate_due`` batch of 100 due secrets, and the total
time of ``reencrypt`` of every version to a new key term, with progress.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from vault_core import open_vault

from .build import add_secrets, secret_ids
from .timing import measure

DAY_US = 86_400_000_000


def bench(n: int, *, database_url: str | None = None, iterations: int = 300, batch: int = 500,
          folder: Path | None = None, quiet: bool = False) -> dict[str, Any]:
    """Run every measurement on a fresh vault of ``n`` secrets; returns the figures (ms / s)."""
    folder = folder or Path(tempfile.mkdtemp(prefix="rotbench-")) / "vault"
    vault = open_vault(folder, database_url=database_url, principal="owner")
    now = vault.clock()
    t0 = time.perf_counter()
    add_secrets(vault, 0, n, seed=7, now=now)
    build_s = time.perf_counter() - t0
    ids = secret_ids(vault, min(n, 5000))
    rng = random.Random(7)
    out: dict[str, Any] = {"secrets": n, "backend": vault.storage.backend, "build_s": round(build_s, 2)}

    rotated: list[str] = []

    def rotate(_i: int, **hooks: Any) -> None:
        sid = rng.choice(ids)
        vault.rotate_secret(sid, "token", **hooks)
        rotated.append(sid)

    # a plain update (one write transaction) in the same run, as the yardstick for rotate
    out["update_same_run"] = measure(lambda i: vault.update_secret(secret_id=rng.choice(ids), value=f"v{i}"),
                                     iterations).to_dict()
    out["rotate"] = measure(rotate, iterations).to_dict()
    out["rotate_staged"] = measure(lambda i: rotate(i, apply=lambda v: None, test=lambda v: True),
                                   iterations).to_dict()
    out["revert"] = measure(lambda i: vault.revert_secret(secret_id=rng.choice(rotated)), iterations).to_dict()

    due = ids[:100]
    for sid in due:
        vault.update_secret(secret_id=sid, rotation_interval_days=1)
    vault.clock = lambda: time.time_ns() // 1000 + 2 * DAY_US
    t0 = time.perf_counter()
    run = vault.rotate_due(limit=100)
    out["rotate_due_100_s"] = round(time.perf_counter() - t0, 4)
    out["rotate_due_rotated"] = len(run.rotated)

    vault.rotate_key_term()
    ticks: list[tuple[float, int, int]] = []
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        ticks.append((time.perf_counter() - start, done, total))
        if not quiet and (done == total or len(ticks) % 20 == 0):
            print(f"  re-encrypt {done}/{total} at {ticks[-1][0]:.2f} s", file=sys.stderr)

    job = vault.reencrypt(progress=progress, batch=batch)
    total_s = time.perf_counter() - start
    out["reencrypt"] = {"versions": job["done"], "batch": batch, "total_s": round(total_s, 3),
                        "versions_per_s": round(job["done"] / total_s) if total_s else None,
                        "progress_calls": len(ticks), "retired_terms": job["retired"]}
    vault.storage.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=10_000, help="number of secrets (default 10000)")
    parser.add_argument("--pg", default=None, help="PostgreSQL URL of an empty database")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args(argv)
    print(json.dumps(bench(args.n, database_url=args.pg, iterations=args.iterations, batch=args.batch), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
