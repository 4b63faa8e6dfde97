"""Benchmark of ``vault_core.streamlit.secrets``: a cached read and a read after a version change.

    python benchmarks/secrets_mapping_bench.py [--database-url postgresql+psycopg://...]

Goals (issue 7): cached ``secrets["name"]`` ≤ 5 µs median; a read after a version
change (version check + audited vault read) ≤ 0.3 ms median.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from vault_core import open_vault
from vault_core.streamlit import VaultSecrets


def _summary(label: str, samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    median_us = statistics.median(ordered) / 1000
    p99_us = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000
    print(f"{label:<40} n={len(ordered):<6} median {median_us:9.2f} µs   p99 {p99_us:9.2f} µs")
    return {"median_us": median_us, "p99_us": p99_us, "n": len(ordered)}


def bench(folder: Path, *, database_url: str | None = None, cached_n: int = 20_000,
          changed_n: int = 300) -> dict[str, dict[str, float]]:
    """Measure both cases on a fresh vault in ``folder``; returns {case: {median_us, p99_us, n}}."""
    vault = open_vault(folder / "vault", database_url=database_url, principal="bench")
    try:
        for i in range(50):  # a realistic environment: the listing holds 50 names
            vault.store_secret(f"app.setting_{i}", f"value-{i}", environment="production")
        vault.store_secret("api_key", "initial", environment="production")
        mapping = VaultSecrets("production", vault=vault)
        mapping["api_key"]
        mapping["api_key"]  # the first read's own audit row moved the change signal once
        cached = []
        for _ in range(cached_n):
            t = time.perf_counter_ns()
            mapping["api_key"]
            cached.append(time.perf_counter_ns() - t)
        changed = []
        for i in range(changed_n):
            vault.update_secret("api_key", "production", value=f"rotated-{i}")
            t = time.perf_counter_ns()
            value = mapping["api_key"]
            changed.append(time.perf_counter_ns() - t)
            assert value == f"rotated-{i}"
        backend = vault.storage.backend
        return {"cached": _summary(f"[{backend}] secrets['api_key'] cached", cached),
                "after_change": _summary(f"[{backend}] secrets['api_key'] after a change", changed)}
    finally:
        vault.storage.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vault-bench-") as tmp:
        bench(Path(tmp), database_url=args.database_url)


if __name__ == "__main__":
    main()
