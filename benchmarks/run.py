"""Run the benchmark harness and write results.md, results.json and latency_vs_size.html.

    /work/venv/bin/python -m benchmarks.run            # full: 1k/10k/100k secrets, 1M audit rows, SQLite + PostgreSQL
    /work/venv/bin/python -m benchmarks.run --quick    # smoke run (< 1 min), SQLite only unless --pg
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/run.py` works as well as `-m benchmarks.run`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from vault_core import open_vault  # noqa: E402

from . import build, extras, hot, peers, report  # noqa: E402
from .vault_ops import THREADS, THROUGHPUT_OPS, VaultBench, bench_access, bench_cpu_only, fsync_ms  # noqa: E402

HERE = Path(__file__).resolve().parent
FULL = dict(sizes=(1_000, 10_000, 100_000), audit_rows=1_000_000, tp_seconds=3.0, peer_iters=8, floor_iters=2000,
            seed_literal_iters=20, kdbx_entries=1000, cryptfile_entries=3, access_iters=5000, rules=10_000,
            iters=dict(store=400, retrieve=2000, list_100=300, update_cas=300, rotate=300, audit_newest_100=300,
                       audit_principal_7d=300, health=200), page_runs=10,
            hot=dict(size=100_000, audit_rows=1_000_000, iters=300, tp_seconds=2.0))
QUICK = dict(sizes=(200, 1_000), audit_rows=5_000, tp_seconds=0.3, peer_iters=1, floor_iters=50,
             seed_literal_iters=2, kdbx_entries=10, cryptfile_entries=0, access_iters=200, rules=10_000,
             iters=dict(store=15, retrieve=40, list_100=10, update_cas=10, rotate=10, audit_newest_100=10,
                        audit_principal_7d=10, health=5), page_runs=2,
             hot=dict(size=500, audit_rows=2_000, iters=10, tp_seconds=0.2))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def bench_backend(vault, cfg: dict, seed: int) -> dict[str, Any]:
    """Build the vault up through each size and measure every operation at each."""
    out: dict[str, Any] = {"sizes": {}}
    now = vault.clock()
    sizes = cfg["sizes"]
    t0 = time.perf_counter()
    build.add_secrets(vault, 0, sizes[0], seed=seed, now=now)
    build.add_audit_rows(vault, cfg["audit_rows"], seed=seed, now=now, id_pool=min(1000, sizes[0]))
    log(f"  {vault.storage.backend}: {cfg['audit_rows']:,} audit rows built in {time.perf_counter() - t0:.1f} s")
    out["audit_rows"] = cfg["audit_rows"]
    built = sizes[0]
    bench = None
    for size in sizes:
        t1 = time.perf_counter()
        build.add_secrets(vault, built, size, seed=seed, now=now)
        built = size
        build.analyze(vault)
        log(f"  {vault.storage.backend}: {size:,} secrets ready ({time.perf_counter() - t1:.1f} s); measuring")
        bench = VaultBench(vault, size, seed=seed, iters=cfg["iters"])
        lat = bench.latencies()
        out["sizes"][str(size)] = {"latency": {k: s.to_dict() for k, s in lat.items()}, "counts": build.counts(vault)}
    out["throughput"] = {}
    for op in THROUGHPUT_OPS:
        out["throughput"][op] = {str(t): round(bench.throughput(op, t, cfg["tp_seconds"]), 1) for t in THREADS}
    log(f"  {vault.storage.backend}: throughput {out['throughput']}")
    return out


def verify(vault) -> dict[str, Any]:
    t = time.perf_counter()
    rep = vault.verify_audit_log()
    return {"ok": rep.ok, "rows": rep.rows_checked, "ms": (time.perf_counter() - t) * 1e3, "problem": rep.problem}


def run_peers(cfg: dict, work: Path, seed: int, pg_url: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    big = cfg["sizes"][-1]

    def guarded(name: str, fn) -> None:
        t = time.perf_counter()
        try:
            res = fn()
            out[name] = {k: (v.to_dict() if hasattr(v, "to_dict") else v) for k, v in res.items()}
        except Exception as exc:  # a peer failing is reported, never fatal to the run
            out[name] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        log(f"  peer {name}: {time.perf_counter() - t:.1f} s")

    guarded("seed-literal", lambda: {**peers.bench_seed_literal(work, 1000, cfg["seed_literal_iters"], seed),
                                     "entries": 1000})
    guarded("keyrings.cryptfile", lambda: peers.bench_cryptfile(work, cfg["cryptfile_entries"], cfg["peer_iters"]))
    guarded("pykeepass", lambda: peers.bench_pykeepass(work, cfg["kdbx_entries"], cfg["peer_iters"]))
    guarded("floor (sqlite3)", lambda: {**peers.bench_floor(work, big, cfg["floor_iters"], seed), "entries": big})
    if pg_url:
        guarded("floor (psycopg)", lambda: {**peers.bench_floor_pg(pg_url, big, cfg["floor_iters"], seed),
                                            "entries": big})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: small sizes, few iterations")
    ap.add_argument("--pg", action=argparse.BooleanOptionalAction, default=None,
                    help="also measure PostgreSQL (default: on for full runs, off for --quick)")
    ap.add_argument("--out", type=Path, default=None,
                    help="output folder (default: benchmarks/ for full runs, a temp folder for --quick)")
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument("--skip-pages", action="store_true", help="do not run the console pages")
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    use_pg = (not args.quick) if args.pg is None else args.pg
    out_dir = args.out or (HERE if not args.quick else Path(tempfile.gettempdir()) / "vault-bench-quick")
    work = Path(tempfile.mkdtemp(prefix="vault-bench-"))
    started = time.perf_counter()
    res: dict[str, Any] = {"meta": {"mode": "quick" if args.quick else "full", "seed": args.seed,
                                    "command": "python -m benchmarks.run" + (" --quick" if args.quick else "")
                                    + (" --pg" if args.quick and use_pg else ""),
                                    "sizes": list(cfg["sizes"]), "audit_rows": cfg["audit_rows"],
                                    "machine": report.machine()},
                           "vault": {}, "peers": {}, "notes": [], "verify": {}}
    res["meta"]["machine"]["fsync_ms"] = round(fsync_ms(work), 3)
    pg = None
    vaults = []
    try:
        log(f"building sqlite vault in {work}")
        sqlite_vault = open_vault(work / "sqlite-vault", principal="bench-owner")
        vaults.append(sqlite_vault)
        res["vault"]["sqlite"] = bench_backend(sqlite_vault, cfg, args.seed)
        pg_url = pg_version = None
        if use_pg:
            from tests.pgserver import start_postgres

            pg = start_postgres(work / "pg")
            pg.create_database("vault_bench")
            pg.create_database("vault_floor")
            pg_url = pg.url("vault_bench")
            log("building postgresql vault")
            pg_vault = open_vault(work / "pg-vault", database_url=pg_url, principal="bench-owner")
            vaults.append(pg_vault)
            with pg_vault.storage.engine.connect() as conn:
                pg_version = conn.exec_driver_sql("SHOW server_version").scalar()
            res["vault"]["postgresql"] = bench_backend(pg_vault, cfg, args.seed)
        res["meta"]["versions"] = report.versions(pg_version)
        log("peers and the floor")
        res["peers"] = run_peers(cfg, work, args.seed, pg.url("vault_floor") if pg else None)
        log("access check and the tmpfs CPU-only run")
        acc = bench_access(cfg["rules"], cfg["access_iters"], args.seed)
        res["access"] = {k: (v.to_dict() if hasattr(v, "to_dict") else v) for k, v in acc.items()}
        cpu = bench_cpu_only(cfg["sizes"][-1], cfg["iters"], args.seed)
        res["cpu_only"] = {k: v.to_dict() for k, v in cpu.items()}
        log("st.secrets replacement and rotation benches (benchmarks/secrets_mapping_bench.py, rotation_bench.py)")
        if pg:
            pg.create_database("vault_mapping")
        res["secrets_mapping"] = extras.secrets_mapping(cfg, work, pg.url("vault_mapping") if pg else None)
        res["rotation_bench"] = extras.rotation(cfg, work)
        log("HTTP API reads at 1, 8, 32 clients next to the in-process read (benchmarks/api_bench.py)")
        from . import api_bench

        res["api_bench"] = api_bench.run_for(cfg, work)

        log("hot paths against their in-run floors (benchmarks/hot.py)")
        if pg:
            pg.create_database("vault_hot")
        (work / "hot").mkdir()
        res["hot"] = hot.run(work / "hot", **cfg["hot"], pg_url=pg.url("vault_hot") if pg else None, log=log)
        log("console pages (AppTest)")
        res["pages"] = ({"runs": {}, "note": "skipped (--skip-pages)"} if args.skip_pages
                        else extras.pages(sqlite_vault, cfg, work))
        log("verifying the audit chains")
        for v in vaults:
            res["verify"][v.storage.backend] = verify(v)
        res["notes"] += extras.notes(res, cfg)
        res["meta"]["elapsed_s"] = round(time.perf_counter() - started, 1)
        files = report.write_all(res, out_dir)
        with open(out_dir / "results.md", "a", encoding="utf-8") as md:
            md.write("\n\n" + hot.render(res["hot"]) + "\n")
    finally:
        for v in vaults:
            v.storage.dispose()
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(report.render(res))
    print(hot.render(res["hot"]))
    log("wrote " + ", ".join(files))
    bad = [b for b, v in res["verify"].items() if not v["ok"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
