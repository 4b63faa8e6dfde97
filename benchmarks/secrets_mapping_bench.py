"""Benchmark of ``vault_core.streamlit.secrets``: a cached read and a read after a version change.

    python benchmarks/secrets_mapping_bench.py [--database-url postgresql+psycopg://...]

Goals (issue 7): cached ``secrets["name"]`` ≤ 5 µs median; a read after a version
change ≤ 0.3 ms median. Its floor is measured beside it: one audited ``vault.get_secret`` after the same
kind of change (the mapping reads the value and what changed in that one call, ``Vault.read_listed``). In the same run: a cached read while
other reads commit their audit rows between (they must not invalidate the cache), a cached
nested read through a ``/`` name (``secrets.smtp.password`` for ``smtp/password``) and
Streamlit's own ``st.secrets["name"]`` loaded from a ``secrets.toml`` (the baseline).
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


def _timed(n: int, read) -> list[int]:
    samples = []
    for _ in range(n):
        t = time.perf_counter_ns()
        read()
        samples.append(time.perf_counter_ns() - t)
    return samples


def _st_secrets(folder: Path):
    """A real ``streamlit.runtime.secrets.Secrets`` loaded from a secrets.toml (no file watcher)."""
    from streamlit import config as st_config
    from streamlit.runtime.secrets import Secrets

    path = folder / "secrets.toml"
    path.write_text('api_key = "initial"\n[smtp]\npassword = "pw"\n')
    old = st_config.get_option("secrets.files")
    st_config.set_option("secrets.files", [str(path)])
    real = Secrets()
    real._file_watchers_installed = True
    real._parse()
    st_config.set_option("secrets.files", old)
    return real


def bench(folder: Path, *, database_url: str | None = None, cached_n: int = 20_000,
          changed_n: int = 300) -> dict[str, dict[str, float]]:
    """Measure both cases on a fresh vault in ``folder``; returns {case: {median_us, p99_us, n}}."""
    vault = open_vault(folder / "vault", database_url=database_url, principal="bench")
    try:
        for i in range(50):  # a realistic environment: the listing holds 50 names
            vault.store_secret(f"app.setting_{i}", f"value-{i}", environment="production")
        vault.store_secret("api_key", "initial", environment="production")
        vault.store_secret("smtp/password", "pw", environment="production")
        mapping = VaultSecrets("production", vault=vault)
        mapping["api_key"], mapping.smtp.password
        mapping["api_key"], mapping.smtp.password  # the first reads' own audit rows moved the change signal
        cached = _timed(cached_n, lambda: mapping["api_key"])
        section = _timed(cached_n, lambda: mapping.smtp.password)
        others = []  # a cached read while other reads commit their audit rows in between (another page, user)
        for i in range(changed_n):
            vault.get_secret(f"app.setting_{i % 50}", "production")
            t = time.perf_counter_ns()
            mapping["api_key"]
            others.append(time.perf_counter_ns() - t)
        real = _st_secrets(folder)
        try:
            baseline = _timed(cached_n, lambda: real["api_key"])
        finally:
            real._reset()
        changed, floor = [], []
        for i in range(changed_n):  # interleaved with its floor: one audited vault read after the same change
            vault.update_secret("api_key", "production", value=f"rotated-{i}")
            t = time.perf_counter_ns()
            value = mapping["api_key"]
            changed.append(time.perf_counter_ns() - t)
            assert value == f"rotated-{i}"
            vault.update_secret("app.setting_0", "production", value=f"v-{i}")
            t = time.perf_counter_ns()
            vault.get_secret("app.setting_0", "production")
            floor.append(time.perf_counter_ns() - t)
        backend = vault.storage.backend
        return {"cached": _summary(f"[{backend}] secrets['api_key'] cached", cached),
                "section_cached": _summary(f"[{backend}] secrets.smtp.password (smtp/password) cached", section),
                "cached_between_reads": _summary(f"[{backend}] secrets['api_key'] cached, other reads between",
                                                 others),
                "after_change": _summary(f"[{backend}] secrets['api_key'] after a change", changed),
                "audited_read_floor": _summary(f"[{backend}] vault.get_secret after a change (floor)", floor),
                "st_secrets_toml": _summary("st.secrets['api_key'] from secrets.toml", baseline)}
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
