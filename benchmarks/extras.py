"""Measurements that depend on other engineers' work: the st.secrets replacement, rotation, pages.

Each is included when its module or page exists at run time; otherwise the
row says so, and the run goes on.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from .report import GROWTH_LIMIT, POINT_OPS

def _optional(module: str):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


def _stat(value: Any) -> Any:
    return value.to_dict() if hasattr(value, "to_dict") else value


def _us_to_ms(stat: dict) -> dict:
    """secrets_mapping_bench reports microseconds; the table is in milliseconds."""
    if "median_us" not in stat:
        return stat
    return {"median_ms": stat["median_us"] / 1000, "p99_ms": stat["p99_us"] / 1000, "n": stat.get("n")}


def secrets_mapping(cfg: dict, work: Path, pg_url: str | None = None) -> dict[str, Any]:
    """The st.secrets replacement read, cached and after a version change (secrets_mapping_bench.bench)."""
    mod = _optional("benchmarks.secrets_mapping_bench")
    if mod is None or not hasattr(mod, "bench"):
        return {"note": "benchmarks/secrets_mapping_bench.py (with bench()) not present at run time"}
    quick = cfg["iters"]["retrieve"] < 100
    out: dict[str, Any] = {}
    for backend, url in (("sqlite", None), ("postgresql", pg_url)):
        if backend == "postgresql" and not url:
            continue
        folder = work / f"mapping-{backend}"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            raw = mod.bench(folder, database_url=url, cached_n=500 if quick else 20_000,
                            changed_n=10 if quick else 300)
        except Exception as exc:  # their bench failing must not lose ours
            return {"note": f"secrets_mapping_bench.bench failed: {type(exc).__name__}: {str(exc)[:200]}"}
        prefix = "" if backend == "sqlite" else "pg_"
        out[prefix + "cached"] = _us_to_ms(raw.get("cached", {}))
        changed = raw.get("after_rotation") or raw.get("after_change") or {}
        out[prefix + "after_rotation"] = _us_to_ms(changed)
        out[prefix + "read_floor"] = _us_to_ms(raw.get("audited_read_floor", {}))
        out[prefix + "st_secrets_toml"] = _us_to_ms(raw.get("st_secrets_toml", {}))
    out["detail"] = ("secrets_mapping_bench.bench on its own 51-name vault; 'after rotation' = the first read "
                     "after a new version (update_secret) of the name; 'read floor' = one audited vault.get_secret after a change, "
                     "interleaved in the same run; 'st secrets toml' = Streamlit's st.secrets from a secrets.toml")
    return out


def rotation(cfg: dict, work: Path, pg_url: str | None = None) -> dict[str, Any]:
    """Rotation figures of benchmarks/rotation_bench.py (its own vault of 10,000 secrets; 200 in --quick)."""
    mod = _optional("benchmarks.rotation_bench")
    if mod is None or not hasattr(mod, "bench"):
        return {"note": "benchmarks/rotation_bench.py (with bench()) not present at run time"}
    quick = cfg["iters"]["retrieve"] < 100
    try:
        raw = mod.bench(200 if quick else 10_000, iterations=10 if quick else 200, folder=work / "rotation-vault",
                        quiet=True)
    except Exception as exc:
        return {"note": f"rotation_bench.bench failed: {type(exc).__name__}: {str(exc)[:200]}"}
    return {k: _stat(v) for k, v in raw.items()}


def pages(vault, cfg: dict, work: Path) -> dict[str, Any]:
    """Warm server-side runs of the secrets, audit and health pages (Streamlit AppTest)."""
    from . import pages_bench

    return pages_bench.run_pages(vault, cfg["page_runs"], work)


def notes(res: dict, cfg: dict) -> list[str]:
    """How cost grows with size, and what this run could not measure."""
    out = []
    for backend, data in res["vault"].items():
        sizes = sorted(int(s) for s in data["sizes"])
        lo, hi = str(sizes[0]), str(sizes[-1])
        growth = []
        for op in POINT_OPS:
            a = data["sizes"][lo]["latency"][op]["median_ms"]
            b = data["sizes"][hi]["latency"][op]["median_ms"]
            growth.append(f"{op} {b / a:.2f}×")
        worst = max(float(g.split()[-1][:-1]) for g in growth)
        out.append(f"{backend}: point operations from {sizes[0]:,} to {sizes[-1]:,} secrets grow "
                   + ", ".join(growth) + (" (all within " if worst <= GROWTH_LIMIT else " (not all within ")
                   + f"{GROWTH_LIMIT}×).")
    for key in ("secrets_mapping", "pages"):
        if res.get(key, {}).get("note"):
            out.append(f"{key}: {res[key]['note']}")
    rot = res.get("rotation_bench", {})
    if rot.get("note"):
        out.append(f"rotation_bench: {rot['note']}")
    out.append("Peers run at their own sizes (column 'entries'): keyrings.cryptfile costs one Argon2id "
               "(t=15, 64 MiB) per value whatever its size; pykeepass re-encrypts and re-derives its key on every "
               "save; seed-literal runs one PBKDF2-SHA256 100k per operation. Their per-operation KDF dominates.")
    out.append("Bulk data: 4 environments, 6 types; 60% of secrets rotate on a 30/90/365-day schedule with ~3% "
               "a few days overdue (a scheduler that keeps up), 20% expire; 1,000,000 audit rows over the last "
               "365 days from 200 principals (Pareto), 7 operations, 3% denied or failed.")
    out.append("SQLite: store/update/rotate commit with synchronous=FULL (durable); a retrieve's audit row "
               "commits with synchronous=NORMAL (durable at the next checkpoint or FULL commit; a power cut "
               "can lose the last read-audit rows, never a secret change).")
    return out
