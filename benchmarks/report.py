"""Turn one run's results into results.md, results.json and the latency-vs-size chart."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from .vault_ops import OPERATIONS

SEED_MS = {"store": 5.0, "retrieve": 3.0, "list_100": 10.0, "rotate": 8.0, "audit_newest_100": 15.0,
           "audit_principal_7d": 15.0, "health": 20.0}
# (row id, backend, operation, limit in ms): medians at the largest size.
GOALS = (
    ("goal/sqlite/retrieve", "sqlite", "retrieve", 0.15),
    ("goal/sqlite/store", "sqlite", "store", 0.5),
    ("goal/sqlite/rotate", "sqlite", "rotate", 0.5),
    ("goal/sqlite/list_100", "sqlite", "list_100", 1.0),
    ("goal/sqlite/audit_newest_100", "sqlite", "audit_newest_100", 1.0),
    ("goal/sqlite/audit_principal_7d", "sqlite", "audit_principal_7d", 1.0),
    ("goal/sqlite/health", "sqlite", "health", 5.0),
    ("goal/postgresql/retrieve", "postgresql", "retrieve", 1.5),
)
POINT_OPS = ("store", "retrieve", "update_cas", "rotate")
GROWTH_LIMIT = 1.3
PAGE_LIMIT_MS = 300.0


def fmt(ms: float | None) -> str:
    if ms is None:
        return "n/a"
    if ms >= 100:
        return f"{ms:,.0f}"
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}"


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if not a or not b else f"{a / b:,.1f}×" if a / b >= 10 else f"{a / b:.2f}×"


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    mem_kib = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                    if line.startswith("MemTotal")), 0)
    return {"nproc": os.cpu_count(), "cpu": model, "memory_gib": round(mem_kib / 1024 ** 2, 1),
            "kernel": platform.release()}


def versions(pg_version: str | None) -> dict[str, str | None]:
    def v(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None
    return {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "SQLAlchemy": v("SQLAlchemy"),
            "cryptography": v("cryptography"), "psycopg": v("psycopg"), "PostgreSQL": pg_version,
            "streamlit": v("streamlit"), "keyrings.cryptfile": v("keyrings.cryptfile"), "pykeepass": v("pykeepass")}


def _median(res: dict, backend: str, op: str, size: int | None = None) -> float | None:
    sizes = res["vault"].get(backend, {}).get("sizes", {})
    if not sizes:
        return None
    key = str(size if size is not None else max(int(s) for s in sizes))
    stat = sizes.get(key, {}).get("latency", {}).get(op)
    return stat["median_ms"] if stat else None


def goal_rows(res: dict) -> list[dict[str, Any]]:
    """PASS/MISS per goal (n/a when its figure was not measured in this run)."""
    out = []
    for gid, backend, op, limit in GOALS:
        got = _median(res, backend, op)
        out.append({"id": gid, "goal": f"{backend} {op} median ≤ {limit} ms", "value_ms": got,
                    "status": "n/a" if got is None else "PASS" if got <= limit else "MISS"})
    for backend in ("sqlite", "postgresql"):
        sizes = sorted(int(s) for s in res["vault"].get(backend, {}).get("sizes", {}))
        for op in POINT_OPS:
            lo = _median(res, backend, op, sizes[0]) if sizes else None
            hi = _median(res, backend, op, sizes[-1]) if sizes else None
            g = hi / lo if lo and hi else None
            out.append({"id": f"goal/{backend}/growth/{op}", "goal": f"{backend} {op}: largest / smallest size "
                        f"≤ {GROWTH_LIMIT}×", "value": g,
                        "status": "n/a" if g is None else "PASS" if g <= GROWTH_LIMIT else "MISS"})
    vault_sqlite = {op: _median(res, "sqlite", op) for op in ("store", "retrieve")}
    for peer in ("keyrings.cryptfile", "pykeepass"):
        p = res["peers"].get(peer, {})
        for op in ("store", "retrieve"):
            theirs = p.get(op, {}).get("median_ms") if isinstance(p.get(op), dict) else None
            ours = vault_sqlite[op]
            out.append({"id": f"goal/faster-than/{peer}/{op}", "goal": f"vault (SQLite) {op} faster than {peer}",
                        "value": theirs / ours if theirs and ours else None,
                        "status": "n/a" if not (theirs and ours) else "PASS" if ours < theirs else "MISS"})
    for page, stat in res.get("pages", {}).get("runs", {}).items():
        ms = stat.get("median_ms") if isinstance(stat, dict) else None
        out.append({"id": f"goal/page/{page}", "goal": f"page {page} server run ≤ {PAGE_LIMIT_MS:.0f} ms",
                    "value_ms": ms, "status": "n/a" if ms is None else "PASS" if ms <= PAGE_LIMIT_MS else "MISS"})
    if not res.get("pages", {}).get("runs"):
        out.append({"id": "goal/page/all", "goal": f"page runs ≤ {PAGE_LIMIT_MS:.0f} ms", "value_ms": None,
                    "status": "n/a"})
    return out


def _vault_tables(res: dict, lines: list[str]) -> None:
    for backend, data in res["vault"].items():
        sizes = sorted(int(s) for s in data["sizes"])
        big = sizes[-1]
        lines += [f"### Vault on {backend} ({data['audit_rows']:,} audit rows)", "",
                  "| operation | " + " | ".join(f"median @ {s:,}" for s in sizes)
                  + f" | p99 @ {big:,} | growth {sizes[0]:,}→{big:,} | seed | seed ÷ vault |",
                  "|---|" + "---:|" * (len(sizes) + 4)]
        for op, label in OPERATIONS:
            meds = [_median(res, backend, op, s) for s in sizes]
            p99 = data["sizes"][str(big)]["latency"][op]["p99_ms"]
            seed = SEED_MS.get(op)
            lines.append(f"| {label} [{backend}/{op}] | " + " | ".join(fmt(m) for m in meds)
                         + f" | {fmt(p99)} | {ratio(meds[-1], meds[0])} | {fmt(seed) if seed else '–'} | "
                         f"{ratio(seed, meds[-1]) if seed else '–'} |")
        lines.append("")
        tp = data.get("throughput", {})
        if tp:
            lines += [f"Throughput on {backend} at {big:,} secrets (ops/s):", "",
                      "| operation | " + " | ".join(f"{t} thread{'s' if t > 1 else ''}" for t in (1, 2, 8)) + " |",
                      "|---|---:|---:|---:|"]
            for op, per in tp.items():
                lines.append(f"| {op} [{backend}/throughput/{op}] | "
                             + " | ".join(f"{per.get(str(t), 0):,.0f}" for t in (1, 2, 8)) + " |")
            lines.append("")


def _peer_table(res: dict, lines: list[str]) -> None:
    vs = {op: _median(res, "sqlite", op) for op in ("store", "retrieve")}
    vp = {op: _median(res, "postgresql", op) for op in ("store", "retrieve")}
    lines += ["### Store and retrieve side by side", "",
              "| implementation | entries | store median | store p99 | retrieve median | retrieve p99 "
              "| ÷ vault SQLite (store / retrieve) | ÷ vault PostgreSQL (store / retrieve) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [("seed (published)", "–", {"median_ms": SEED_MS["store"]}, {"median_ms": SEED_MS["retrieve"]})]
    for name, p in res["peers"].items():
        if "error" in p:
            lines.append(f"| {name} [peer/{name}] | – | n/a | | n/a | | {p['error']} | |")
            continue
        rows.append((name, p.get("entries", "–"), p["store"], p["retrieve"]))
    for name, entries, st, rt in rows:
        s, r = st.get("median_ms"), rt.get("median_ms")
        ent = f"{entries:,}" if isinstance(entries, int) else entries
        lines.append(f"| {name} [peer/{name}] | {ent} | {fmt(s)} | {fmt(st.get('p99_ms'))} | {fmt(r)} | "
                     f"{fmt(rt.get('p99_ms'))} | {ratio(s, vs['store'])} / {ratio(r, vs['retrieve'])} | "
                     f"{ratio(s, vp['store'])} / {ratio(r, vp['retrieve'])} |")
    lines += ["", "A ratio above 1 means the vault is that many times faster; below 1 (the floor) it is the "
              "vault's overhead over raw sqlite3/psycopg + AES-GCM + an audit insert.", ""]


def _other_tables(res: dict, lines: list[str]) -> None:
    acc = res.get("access", {})
    lines += ["### Other measurements", "", "| measurement | median | p99 | note |", "|---|---:|---:|---|"]
    for key in ("uncached", "cached"):
        st = acc.get(key, {})
        lines.append(f"| access check, {acc.get('rules', 0):,} rules, {key} [access/{key}] | "
                     f"{fmt(st.get('median_ms'))} | {fmt(st.get('p99_ms'))} | "
                     f"{acc.get('candidates', '?')} candidate rules for the caller |")
    mapping = res.get("secrets_mapping", {})
    for key in ("cached", "after_rotation", "read_floor", "st_secrets_toml", "pg_cached", "pg_after_rotation",
                "pg_read_floor"):
        st = mapping.get(key)
        if key.startswith("pg_") and st is None:
            continue
        note = mapping.get("note", "") if not isinstance(st, dict) else mapping.get("detail", "") \
            if key == "cached" else ""
        lines.append(f"| st.secrets replacement read, {key.replace('_', ' ')} [secrets_mapping/{key}] | "
                     f"{fmt(st.get('median_ms') if isinstance(st, dict) else None)} | "
                     f"{fmt(st.get('p99_ms') if isinstance(st, dict) else None)} | {note} |")
    pages = res.get("pages", {})
    for page in ("secrets", "audit", "health"):
        st = pages.get("runs", {}).get(page)
        note = pages.get("note", "") if not isinstance(st, dict) else (
            st.get("error") or f"{st.get('file')}, cold run {st.get('cold_ms')} ms"
            + (" (placeholder page)" if st.get("placeholder") else ""))
        lines.append(f"| page run (AppTest, warm): {page} [page/{page}] | "
                     f"{fmt(st.get('median_ms') if isinstance(st, dict) else None)} | "
                     f"{fmt(st.get('p99_ms') if isinstance(st, dict) else None)} | {note} |")
    for backend, ver in res.get("verify", {}).items():
        lines.append(f"| audit verify, whole chain [verify/{backend}] | {fmt(ver.get('ms'))} | – | "
                     f"{backend}: {ver.get('rows', 0):,} rows, ok={ver.get('ok')} |")
    for op, st in res.get("cpu_only", {}).items():
        lines.append(f"| {op} on a SQLite vault in /dev/shm (no fsync cost) [cpu_only/{op}] | {fmt(st['median_ms'])} | "
                     f"{fmt(st['p99_ms'])} | the software's own cost at {res['meta']['sizes'][-1]:,} secrets |")
    rot = res.get("rotation_bench", {})
    where = f"rotation_bench.py, {rot.get('backend', '?')}, {rot.get('secrets', 0):,} secrets"
    for key, val in rot.items():
        if isinstance(val, dict) and "median_ms" in val:
            lines.append(f"| rotation_bench: {key} [rotation/{key}] | {fmt(val['median_ms'])} | "
                         f"{fmt(val.get('p99_ms'))} | {where} |")
    if "rotate_due_100_s" in rot:
        lines.append(f"| rotation_bench: rotate_due, one batch of 100 [rotation/rotate_due_100] | "
                     f"{fmt(rot['rotate_due_100_s'] * 1e3)} | – | {rot.get('rotate_due_rotated')} rotated; {where} |")
    if isinstance(rot.get("reencrypt"), dict):
        re_ = rot["reencrypt"]
        lines.append(f"| rotation_bench: re-encrypt every version to a new key term [rotation/reencrypt] | "
                     f"{fmt(re_.get('total_s', 0) * 1e3)} | – | {re_.get('versions', 0):,} versions, "
                     f"{re_.get('versions_per_s')} versions/s; {where} |")
    lines.append("")


def render(res: dict) -> str:
    m, v = res["meta"]["machine"], res["meta"]["versions"]
    lines = [f"# Benchmark results ({res['meta']['mode']} run)", "",
             f"Date: {res['meta']['date']}. Command: `{res['meta']['command']}`. Seed: {res['meta']['seed']}.", "",
             f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB RAM, Linux {m['kernel']}; "
             "shared with other work while measured, so figures are noisy. "
             f"One fsync on the benchmark disk: {m.get('fsync_ms', '?')} ms (median), the floor of any durable commit.",
             "",
             "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val), "",
             "All times in milliseconds. Medians unless marked p99. Bracketed ids name the rows of results.json.", ""]
    _vault_tables(res, lines)
    _peer_table(res, lines)
    _other_tables(res, lines)
    lines += ["### Goals", "", "| goal | measured | status |", "|---|---:|---|"]
    for g in res["goals"]:
        val = g.get("value_ms")
        shown = fmt(val) + " ms" if val is not None else (f"{g['value']:.2f}×" if g.get("value") else "n/a")
        lines.append(f"| {g['goal']} [{g['id']}] | {shown} | {g['status']} |")
    lines += ["", "### Notes", ""] + [f"- {n}" for n in res.get("notes", [])] + [""]
    return "\n".join(lines)


def row_ids(res: dict) -> list[str]:
    """Every row id the table and the JSON must both contain."""
    ids = []
    for backend, data in res["vault"].items():
        ids += [f"{backend}/{op}" for op, _ in OPERATIONS]
        ids += [f"{backend}/throughput/{op}" for op in data.get("throughput", {})]
    ids += [f"peer/{name}" for name in ["seed (published)", *res["peers"]]]
    ids += ["access/uncached", "access/cached", "secrets_mapping/cached", "secrets_mapping/after_rotation",
            "page/secrets", "page/audit", "page/health"]
    ids += [f"verify/{b}" for b in res.get("verify", {})]
    ids += [f"cpu_only/{op}" for op in res.get("cpu_only", {})]
    ids += [g["id"] for g in res["goals"]]
    return ids


def chart(res: dict, out: Path) -> list[str]:
    """latency_vs_size.html (and a PNG only if kaleido is installed)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for backend, data in res["vault"].items():
        sizes = sorted(int(s) for s in data["sizes"])
        for op, label in OPERATIONS:
            fig.add_trace(go.Scatter(x=sizes, y=[_median(res, backend, op, s) for s in sizes],
                                     mode="lines+markers", name=f"{backend}: {label}"))
    fig.update_layout(title="Vault latency (median) against vault size", xaxis_type="log", yaxis_type="log",
                      xaxis_title="secrets in the vault", yaxis_title="median latency (ms)")
    written = [str(out / "latency_vs_size.html")]
    fig.write_html(written[0], include_plotlyjs="cdn")
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return written
    try:
        fig.write_image(str(out / "latency_vs_size.png"))
        written.append(str(out / "latency_vs_size.png"))
    except Exception as exc:  # kaleido present but no browser for it: the HTML is the chart
        res.setdefault("notes", []).append(f"PNG not written: {type(exc).__name__}")
    return written


def write_all(res: dict, out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    res["meta"]["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    res["goals"] = goal_rows(res)
    res["row_ids"] = row_ids(res)
    files = chart(res, out)
    (out / "results.md").write_text(render(res))
    (out / "results.json").write_text(json.dumps(res, indent=1, default=str))
    return [str(out / "results.md"), str(out / "results.json"), *files]
