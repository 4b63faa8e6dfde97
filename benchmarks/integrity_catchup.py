"""Row integrity at 100k secrets: a reader's first read after another process changed a secret, caught up
from the audit tail (only the changed rows re-read) versus a full rescan of the table, next to the steady
read in the same run:

    python -m benchmarks.integrity_catchup [--secrets N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from vault_core import open_vault
from vault_core.storage.repos import integrity

from . import build


def _measure(reader, writer, env: str, name: str, rounds: int = 7) -> tuple[float, float]:
    """(median ms of the first read after a change by ``writer``, mean ms of a steady read)."""
    firsts = []
    for i in range(rounds):
        writer.update_secret("bench/written", "production", value=str(i))
        t = time.perf_counter()
        reader.get_secret(name, environment=env)
        firsts.append(time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(200):
        reader.get_secret(name, environment=env)
    return 1e3 * statistics.median(firsts), 1e3 * (time.perf_counter() - t) / 200


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--secrets", type=int, default=100_000)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp()) / "vault"
    writer = open_vault(folder, principal="owner")  # two vaults on one database: two processes
    build.add_secrets(writer, 0, args.secrets, seed=1, now=time.time_ns() // 1000)
    writer.store_secret(name="bench/written", value="0", environment="production")
    reader = open_vault(folder, principal="owner")
    env, name = build.secret_name(5)
    reader.get_secret(name, environment=env)
    print(f"{args.secrets:,} secrets, SQLite")
    print("| path | first read after another process's change, median ms | steady read ms |\n|---|---:|---:|")
    print("| audit-tail catch-up | %.2f | %.3f |" % _measure(reader, writer, env, name))
    integrity._CHANGED.clear()  # what the check did before: rescan the whole table
    print("| full rescan | %.2f | %.3f |" % _measure(reader, writer, env, name))


if __name__ == "__main__":
    main()
