"""Measurements that depend on other engineers' work: the st.secrets replacement, rotation, pages.

Each is included when its module or page exists at run time; otherwise the
row says so, and the run goes on.
"""

from __future__ import annotations

import importlib
import inspect
import time
from pathlib import Path
from typing import Any

from .report import GROWTH_LIMIT, POINT_OPS

ROOT = Path(__file__).resolve().parent.parent


def _optional(module: str):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


def _call(fn, **available: Any) -> Any:
    """Call ``fn`` with the keyword arguments it accepts among ``available``."""
    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return fn(**available)
    return fn(**{k: v for k, v in available.items() if k in params})


def _stat(value: Any) -> Any:
    return value.to_dict() if hasattr(value, "to_dict") else value


def secrets_mapping(vault, cfg: dict, work: Path) -> dict[str, Any]:
    """The st.secrets replacement read, cached and after a rotation (benchmarks/secrets_mapping_bench.py)."""
    mod = _optional("benchmarks.secrets_mapping_bench")
    if mod is None:
        return {"note": "benchmarks/secrets_mapping_bench.py not present at run time"}
    fn = next((getattr(mod, n) for n in ("bench", "run", "measure", "benchmark", "main") if hasattr(mod, n)), None)
    if fn is None:
        return {"note": "secrets_mapping_bench.py has no bench()/run() function"}
    try:
        t = time.perf_counter()
        raw = _call(fn, vault=vault, quick=cfg is not None and cfg["iters"]["retrieve"] < 100,
                    iterations=cfg["iters"]["retrieve"], workdir=work, tmp_path=work)
        raw = raw if isinstance(raw, dict) else {"result": raw}
        out = {k: _stat(v) for k, v in raw.items()}
        for alias, key in (("cached", "cached"), ("after_rotation", "after_rotation"), ("rotated", "after_rotation"),
                           ("after_rotate", "after_rotation")):
            if alias in out and key not in out:
                out[key] = out[alias]
        out["detail"] = f"from secrets_mapping_bench.{fn.__name__} ({time.perf_counter() - t:.1f} s)"
        return out
    except Exception as exc:  # their bench failing must not lose ours
        return {"note": f"secrets_mapping_bench failed: {type(exc).__name__}: {str(exc)[:200]}"}


def rotation(vault, cfg: dict, work: Path) -> dict[str, Any]:
    """Results of benchmarks/rotation_bench.py when it exists (bulk or staged rotation)."""
    mod = _optional("benchmarks.rotation_bench")
    if mod is None:
        return {"note": "benchmarks/rotation_bench.py not present at run time"}
    fn = next((getattr(mod, n) for n in ("bench", "run", "measure", "benchmark", "main") if hasattr(mod, n)), None)
    if fn is None:
        return {"note": "rotation_bench.py has no bench()/run() function"}
    try:
        raw = _call(fn, vault=vault, quick=cfg["iters"]["retrieve"] < 100, iterations=cfg["iters"]["rotate"],
                    workdir=work, tmp_path=work)
        return {k: _stat(v) for k, v in (raw if isinstance(raw, dict) else {"result": raw}).items()}
    except Exception as exc:
        return {"note": f"rotation_bench failed: {type(exc).__name__}: {str(exc)[:200]}"}


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
    out.append("SQLite: store/update/rotate commit with synchronous=FULL (durable); a retrieve's audit row "
               "commits with synchronous=NORMAL (durable at the next checkpoint or FULL commit; a power cut "
               "can lose the last read-audit rows, never a secret change).")
    return out
